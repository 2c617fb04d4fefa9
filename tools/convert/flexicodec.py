"""Converter from an official FlexiCodec checkpoint (the layout of the released
`jiaqili3/flexicodec` files: `<name>.safetensors` + `<name>_config.yaml`, the YAML's single
top-level key `model:` holding the keyword arguments of `FlexiCodec`) to Sotto's GGUF, for the
DECODE side of the codec.

What it writes
- `general.architecture = "flexicodec"`, `general.name`, and the hyperparameters under
  `flexicodec.*` (listed in METADATA below), taken from the config with the constructor
  defaults of flexicodec 0.1.2 filled in; sizes the constructor does not expose (the ConvNeXt
  intermediate width, hard-coded to 2048 in FlexiCodec) are read from the tensor shapes.
- The decode-side tensors under their official state_dict names:
    semantic_vq.fsq.project_out.*           FSQ code (len(levels) dims) -> convnext_dim
    semantic_vq.fsq.project_in.*            (encoder side, copied when present)
    convnext_decoder.{0..L-1}.*             ConvNeXt blocks; convnext_decoder.L = 1x1 output conv
    dac.quantizer.quantizers.{i}.codebook.weight, .out_proj.*, .in_proj.* (in_proj: encoder)
    bottleneck_transformer.*                copied as is
    dac.decoder.model.*                     the DAC decoder
  Weight norm is folded: `weight_g`/`weight_v` (or the parametrisation API's
  `parametrizations.weight.original0/1`) become a plain `.weight` = g * v / ||v||, the norm
  taken over every axis but 0 (torch.nn.utils.weight_norm's default dim=0). Axis 0 is the
  output channel of a Conv1d ([out, in, k]) and the INPUT channel of a ConvTranspose1d
  ([in, out, k]); the gain is stored as [in, 1, 1] there, which the converter checks.
  `--dtype f16` stores the 2-D/3-D weights of linears and convolutions as f16; codebooks,
  Snake alphas, norms, biases and layer scales stay f32. Folding happens in float64 first.

What it skips
- `semantic_model.*` (SenseVoice-Small, loaded separately by the official code), the DAC
  encoder, the ConvNeXt encoder and the two query-token aggregators: encoder side, not needed
  to decode. It prints which decode-side keys were expected, present and missing (the official
  checkpoint is loaded with strict=False, so a missing key would go unnoticed there); a missing
  decode-side key is an error.
- Unless `--with-encoder` is given: then the DAC encoder (`dac.encoder.*`), the ConvNeXt
  encoder (`convnext_encoder.0` = 1x1 conv ssl_dim -> convnext_dim, then the blocks),
  `semantic_aggregator.*` and `acoustic_aggregator.*` (query_embedding, optional
  `transformer.input_proj` / `transformer.output_projs.0`, the transformer layers) are written
  too, FSQ project_in and RVQ in_proj become required, and the encoder metadata is added
  (see below). Without the option the output is unchanged.
- SenseVoice, unless `--sensevoice MODEL.pt --am-mvn AM.MVN` are given with `--with-encoder`:
  then the SenseVoice-Small encoder (FunASR's model.pt, or any checkpoint holding it under
  `semantic_model.`) and its CMVN go into the same file through tools/convert/sensevoice.py
  (`add_to_writer`): tensors under `semantic_model.` (FlexiCodec's names), the `sensevoice.*`
  metadata and `sensevoice.cmvn.*`. Such a file encodes audio end to end (`sotto encode`).

Usage:
  python tools/convert/flexicodec.py CHECKPOINT.safetensors out.gguf [--config C.yaml]
                                     [--dtype f16] [--name NAME] [--with-encoder
                                     [--sensevoice MODEL.pt --am-mvn AM.MVN]]
  (the config defaults to CHECKPOINT_config.yaml next to the checkpoint)
"""

import argparse
import os
import sys

import numpy as np
import torch
import yaml

try:
    import gguf
except ImportError as e:  # pragma: no cover
    raise SystemExit("tools/convert needs the 'gguf' package: see tools/README.md") from e

try:
    from safetensors import safe_open
except ImportError as e:  # pragma: no cover
    raise SystemExit("tools/convert/flexicodec.py needs the 'safetensors' package") from e

ARCH = "flexicodec"

# FlexiCodec.__init__ defaults in flexicodec 0.1.2 (modeling_flexicodec.py), restated so the
# converter needs neither the package nor funasr.
DEFAULTS = dict(
    encoder_dim=64, encoder_rates=[2, 4, 8, 8], latent_dim=None, decoder_dim=1536,
    decoder_rates=[8, 8, 4, 2], n_codebooks=9, codebook_size=1024, codebook_dim=8,
    fsq_config=None, sample_rate=24000, convnext_dim=768, convnext_layers=4,
    decode_semantic_for_codec=True, is_causal=True, semantic_downsample_factor=2,
    use_similarity_alignment=False, similarity_threshold=None,
    use_dynamic_similarity_threshold=False, similarity_threshold_lower=0.8,
    similarity_threshold_upper=1.0, max_tokens_per_group=8, semantic_model_type="sensevoice",
    use_bottleneck_transformer=False, transformer_num_layers=6, transformer_dim=512,
    transformer_dim_feedforward=2048, transformer_num_heads=8, transformer_causal=False,
    transformer_context_frames=24, use_query_token_aggregator=False,
    agg_transformer_num_layers=6, agg_transformer_dim=512, agg_transformer_num_heads=8,
    agg_transformer_dim_feedforward=2048, agg_transformer_causal=False,
    agg_use_mean_pooling_init=True, agg_transformer_context_frames=None, ssl_dim=1024,
)
FSQ_LEVELS_DEFAULT = [8, 8, 8, 8, 8]  # FSQWrapper default
# Fixed by the official modules rather than by the config.
CONVNEXT_KERNEL = 7
CONVNEXT_NORM_EPS = 1e-6       # cnn.ConvNeXtBlock: nn.LayerNorm(dim, eps=1e-6)
TRANSFORMER_NORM_EPS = 1e-5    # mimi transformer 'layer_norm'
TRANSFORMER_LAYER_SCALE = 0.01  # init value FlexiCodec passes (informational)
ROPE_MAX_PERIOD = 10000.0
RU_DILATIONS = (1, 3, 9)

DECODE_PREFIXES = ("semantic_vq.", "convnext_decoder.", "dac.quantizer.", "dac.decoder.",
                   "bottleneck_transformer.")
# Written only with --with-encoder (everything of the encode side but SenseVoice).
ENCODE_PREFIXES = ("dac.encoder.", "convnext_encoder.", "semantic_aggregator.",
                   "acoustic_aggregator.")
FSQ_BOUND_EPS = 1e-3      # FSQ.bound(z, eps=1e-3)
MERGE_COSINE_EPS = 1e-8   # F.cosine_similarity default eps (frame merging)

METADATA = """
flexicodec.sample_rate                 audio rate (Hz)
flexicodec.hop_length                  samples per 12.5 Hz frame = prod(decoder_rates)
flexicodec.latent_dim                  DAC latent / bottleneck width
flexicodec.decoder_dim, decoder_rates  DAC decoder width and upsampling strides (array)
flexicodec.decoder_dilations           residual-unit dilations (1, 3, 9)
flexicodec.n_codebooks, codebook_size  RVQ stages stored and entries per stage
flexicodec.codebook_dim                array: code width per stage
flexicodec.fsq_levels                  array: FSQ levels per code dim
flexicodec.convnext_dim, convnext_intermediate_dim, convnext_layers, convnext_kernel
flexicodec.convnext_causal             bool: is_causal (left pad 6 instead of 3/3)
flexicodec.convnext_norm_eps           1e-6
flexicodec.decode_semantic_for_codec   bool: the ConvNeXt decoder runs after project_out
flexicodec.use_similarity_alignment    bool: groups with token lengths (dynamic frame rate)
flexicodec.max_tokens_per_group, similarity_threshold[_lower|_upper],
flexicodec.use_dynamic_similarity_threshold      merging settings (informational here)
flexicodec.transformer.{num_layers, dim, num_heads, dim_feedforward, causal, context_frames,
                        norm_eps, layer_scale_init, rope_max_period, has_input_proj}
                                       num_layers 0: no bottleneck transformer (identity)
flexicodec.semantic_downsample_factor (float64), encoder_dim, encoder_rates,
                        semantic_model_type
with --with-encoder also:
flexicodec.encoder_dilations           DAC encoder residual-unit dilations (1, 3, 9)
flexicodec.ssl_dim                     semantic feature width (512 for SenseVoice; read off
                                       convnext_encoder.0's input width)
flexicodec.use_query_token_aggregator, agg_use_mean_pooling_init      bool
flexicodec.fsq_bound_eps, merge_cosine_eps                            1e-3, 1e-8
flexicodec.{semantic,acoustic}_aggregator.{num_layers, dim, num_heads, dim_feedforward,
                        causal, context_frames, norm_eps, rope_max_period, in_out_dim}
                                       in_out_dim != dim: input_proj / output_projs.0 present
with --sensevoice/--am-mvn also (tools/convert/sensevoice.py): the sensevoice.* keys,
sensevoice.cmvn.shift/scale and the encoder under semantic_model.
"""


def load_config(path):
    with open(path) as f:
        cfg = yaml.safe_load(f)
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict):
        raise SystemExit(f"{path}: expected a top-level 'model:' mapping of FlexiCodec kwargs")
    kw = dict(DEFAULTS)
    kw.update(cfg["model"])
    return kw


class Checkpoint:
    """Tensor names and lazy float32 access for a .safetensors file (or a dict, for tests)."""

    def __init__(self, path):
        self.f = safe_open(path, framework="pt")
        self.names = set(self.f.keys())

    def get(self, name):
        return self.f.get_tensor(name).to(torch.float32)

    def shape(self, name):
        return tuple(self.f.get_slice(name).get_shape())


def wn_pair(names, base):
    """(g, v) names of a weight-normed weight `base` (e.g. 'dac.decoder.model.0'), or None."""
    for g, v in ((f"{base}.weight_g", f"{base}.weight_v"),
                 (f"{base}.parametrizations.weight.original0",
                  f"{base}.parametrizations.weight.original1")):
        if g in names and v in names:
            return g, v
    return None


def fold_wn(g, v, base):
    """w = g * v / ||v||, the norm over all axes but 0 (torch weight_norm dim=0)."""
    if g.dim() != v.dim() or g.shape[0] != v.shape[0] or g[0].numel() != 1:
        raise SystemExit(f"{base}: weight_g {tuple(g.shape)} is not a dim-0 gain for weight_v "
                         f"{tuple(v.shape)}")
    v64 = v.to(torch.float64)
    norm = v64.flatten(1).norm(dim=1).reshape([-1] + [1] * (v.dim() - 1))
    return (g.to(torch.float64) * v64 / norm).to(torch.float32)


def hparams(kw, ck, with_encoder=False):
    """All metadata as (key, value, kind); kind in u32, i32, f32, str, bool, arr_i32."""
    if kw.get("semantic_encoder") is not None or kw.get("semantic_decoder") is not None:
        raise SystemExit("custom semantic_encoder/semantic_decoder modules are not supported")
    latent = kw["latent_dim"]
    if latent is None:  # DAC: encoder_dim * 2 ** len(encoder_rates)
        latent = kw["encoder_dim"] * 2 ** len(kw["encoder_rates"])
    fsq = dict(kw["fsq_config"] or {})
    levels = [int(x) for x in fsq.pop("levels", FSQ_LEVELS_DEFAULT)]
    if fsq.get("num_codebooks", 1) != 1:
        raise SystemExit(f"FSQ num_codebooks {fsq['num_codebooks']} (only 1 is supported)")
    n_q = int(kw["n_codebooks"])
    cdim = kw["codebook_dim"]
    cdims = [int(cdim)] * n_q if isinstance(cdim, int) else [int(x) for x in cdim]
    if len(cdims) != n_q:
        raise SystemExit(f"codebook_dim list of {len(cdims)} for {n_q} codebooks")
    rates = [int(r) for r in kw["decoder_rates"]]
    dec_dim = int(kw["decoder_dim"])
    if dec_dim % (2 ** len(rates)):
        raise SystemExit(f"decoder_dim {dec_dim} not divisible by 2^{len(rates)}")
    cnx_layers = int(kw["convnext_layers"])
    cnx_dim = int(kw["convnext_dim"])
    inter = 2048
    name = "convnext_decoder.0.pwconv1.weight"
    if cnx_layers > 0 and name in ck.names:
        inter = ck.shape(name)[0]
    decode_sem = bool(kw["decode_semantic_for_codec"])
    if not decode_sem and cnx_dim != latent:
        raise SystemExit(f"decode_semantic_for_codec false needs convnext_dim == latent_dim "
                         f"({cnx_dim} vs {latent})")
    n_tr = int(kw["transformer_num_layers"]) if kw["use_bottleneck_transformer"] else 0
    tr_dim = int(kw["transformer_dim"])
    mtpg = kw["max_tokens_per_group"]
    mtpg = int(mtpg) if (mtpg is not None and mtpg > 0) else 0

    def f(x):
        return float(x) if x is not None else -1.0

    meta = [
        ("flexicodec.sample_rate", int(kw["sample_rate"]), "u32"),
        ("flexicodec.hop_length", int(np.prod(rates)), "u32"),
        ("flexicodec.latent_dim", int(latent), "u32"),
        ("flexicodec.decoder_dim", dec_dim, "u32"),
        ("flexicodec.decoder_rates", rates, "arr_i32"),
        ("flexicodec.decoder_dilations", list(RU_DILATIONS), "arr_i32"),
        ("flexicodec.n_codebooks", n_q, "u32"),
        ("flexicodec.codebook_size", int(kw["codebook_size"]), "u32"),
        ("flexicodec.codebook_dim", cdims, "arr_i32"),
        ("flexicodec.fsq_levels", levels, "arr_i32"),
        ("flexicodec.convnext_dim", cnx_dim, "u32"),
        ("flexicodec.convnext_intermediate_dim", int(inter), "u32"),
        ("flexicodec.convnext_layers", cnx_layers, "u32"),
        ("flexicodec.convnext_kernel", CONVNEXT_KERNEL, "u32"),
        ("flexicodec.convnext_causal", bool(kw["is_causal"]), "bool"),
        ("flexicodec.convnext_norm_eps", CONVNEXT_NORM_EPS, "f32"),
        ("flexicodec.decode_semantic_for_codec", decode_sem, "bool"),
        ("flexicodec.use_similarity_alignment", bool(kw["use_similarity_alignment"]), "bool"),
        ("flexicodec.max_tokens_per_group", mtpg, "u32"),
        ("flexicodec.similarity_threshold", f(kw["similarity_threshold"]), "f32"),
        ("flexicodec.use_dynamic_similarity_threshold",
         bool(kw["use_dynamic_similarity_threshold"]), "bool"),
        ("flexicodec.similarity_threshold_lower", f(kw["similarity_threshold_lower"]), "f32"),
        ("flexicodec.similarity_threshold_upper", f(kw["similarity_threshold_upper"]), "f32"),
        ("flexicodec.transformer.num_layers", n_tr, "u32"),
        ("flexicodec.transformer.dim", tr_dim, "u32"),
        ("flexicodec.transformer.num_heads", int(kw["transformer_num_heads"]), "u32"),
        ("flexicodec.transformer.dim_feedforward", int(kw["transformer_dim_feedforward"]), "u32"),
        ("flexicodec.transformer.causal", bool(kw["transformer_causal"]), "bool"),
        ("flexicodec.transformer.context_frames", int(kw["transformer_context_frames"]), "u32"),
        ("flexicodec.transformer.norm_eps", TRANSFORMER_NORM_EPS, "f32"),
        ("flexicodec.transformer.layer_scale_init", TRANSFORMER_LAYER_SCALE, "f32"),
        ("flexicodec.transformer.rope_max_period", ROPE_MAX_PERIOD, "f32"),
        ("flexicodec.transformer.has_input_proj", n_tr > 0 and tr_dim != latent, "bool"),
        # f64: the 4/3 rule int(T / factor) is evaluated in double precision
        ("flexicodec.semantic_downsample_factor", float(kw["semantic_downsample_factor"]), "f64"),
        ("flexicodec.encoder_dim", int(kw["encoder_dim"]), "u32"),
        ("flexicodec.encoder_rates", [int(r) for r in kw["encoder_rates"]], "arr_i32"),
        ("flexicodec.semantic_model_type", str(kw["semantic_model_type"]), "str"),
    ]
    if with_encoder:
        meta += encoder_hparams(kw, latent, ck)
    return meta


def ssl_width(kw, ck):
    """The semantic feature width: FlexiCodec.__init__ forces ssl_dim = 512 for SenseVoice,
    but the width actually used is that of convnext_encoder.0's input, read off the checkpoint
    (a narrower SenseVoice in test models)."""
    pair = wn_pair(ck.names, "convnext_encoder.0")
    name = pair[1] if pair else "convnext_encoder.0.weight"
    if name in ck.names:
        return int(ck.shape(name)[1])
    return 512 if kw["semantic_model_type"] == "sensevoice" else int(kw["ssl_dim"])


def encoder_hparams(kw, latent, ck):
    """The metadata of the encode side (--with-encoder)."""
    if not kw["use_query_token_aggregator"] or not kw["use_similarity_alignment"]:
        raise SystemExit("--with-encoder supports the dynamic-frame-rate model only "
                         "(use_similarity_alignment and use_query_token_aggregator)")
    if not kw["agg_use_mean_pooling_init"]:
        raise SystemExit("agg_use_mean_pooling_init false (learned query token) is not supported")
    ssl = ssl_width(kw, ck)
    ctx_s = int(kw["transformer_context_frames"])
    ctx_a = kw["agg_transformer_context_frames"]
    ctx_a = ctx_s if ctx_a is None else int(ctx_a)
    meta = [
        ("flexicodec.encoder_dilations", list(RU_DILATIONS), "arr_i32"),
        ("flexicodec.ssl_dim", ssl, "u32"),
        ("flexicodec.use_query_token_aggregator", True, "bool"),
        ("flexicodec.agg_use_mean_pooling_init", True, "bool"),
        ("flexicodec.fsq_bound_eps", FSQ_BOUND_EPS, "f32"),
        ("flexicodec.merge_cosine_eps", MERGE_COSINE_EPS, "f32"),
    ]
    # semantic_aggregator: d_model agg_transformer_dim over ssl_dim features; acoustic: d_model
    # = in/out = the latent width (QueryTokenAggregator(dim=dac_bn_dim, in_out_dim=dac_bn_dim)).
    for which, dim, io, ctx in (("semantic", int(kw["agg_transformer_dim"]), ssl, ctx_s),
                                ("acoustic", int(latent), int(latent), ctx_a)):
        p = f"flexicodec.{which}_aggregator."
        meta += [
            (p + "num_layers", int(kw["agg_transformer_num_layers"]), "u32"),
            (p + "dim", dim, "u32"),
            (p + "num_heads", int(kw["agg_transformer_num_heads"]), "u32"),
            (p + "dim_feedforward", int(kw["agg_transformer_dim_feedforward"]), "u32"),
            (p + "causal", bool(kw["agg_transformer_causal"]), "bool"),
            (p + "context_frames", ctx, "u32"),
            (p + "norm_eps", TRANSFORMER_NORM_EPS, "f32"),
            (p + "rope_max_period", ROPE_MAX_PERIOD, "f32"),
            (p + "in_out_dim", io, "u32"),
        ]
    return meta


def expected(meta):
    """Decode-side tensors the SDK reads, by their (folded) names -> expected shape, plus the
    optional encoder-side ones (FSQ project_in, RVQ in_proj)."""
    md = {k: v for k, v, _ in meta}
    lat, C, I = md["flexicodec.latent_dim"], md["flexicodec.convnext_dim"], \
        md["flexicodec.convnext_intermediate_dim"]
    L, nlev = md["flexicodec.convnext_layers"], len(md["flexicodec.fsq_levels"])
    req, opt = {}, {}
    req["semantic_vq.fsq.project_out.weight"] = (C, nlev)
    req["semantic_vq.fsq.project_out.bias"] = (C,)
    opt["semantic_vq.fsq.project_in.weight"] = (nlev, C)
    opt["semantic_vq.fsq.project_in.bias"] = (nlev,)
    if md["flexicodec.decode_semantic_for_codec"]:
        for i in range(L):
            p = f"convnext_decoder.{i}."
            req.update({p + "dwconv.weight": (C, 1, CONVNEXT_KERNEL), p + "dwconv.bias": (C,),
                        p + "norm.weight": (C,), p + "norm.bias": (C,),
                        p + "pwconv1.weight": (I, C), p + "pwconv1.bias": (I,),
                        p + "pwconv2.weight": (C, I), p + "pwconv2.bias": (C,)})
        req[f"convnext_decoder.{L}.weight"] = (lat, C, 1)
        req[f"convnext_decoder.{L}.bias"] = (lat,)
    for i, d in enumerate(md["flexicodec.codebook_dim"]):
        p = f"dac.quantizer.quantizers.{i}."
        req[p + "codebook.weight"] = (md["flexicodec.codebook_size"], d)
        req[p + "out_proj.weight"] = (lat, d, 1)
        req[p + "out_proj.bias"] = (lat,)
        opt[p + "in_proj.weight"] = (d, lat, 1)
        opt[p + "in_proj.bias"] = (d,)
    D = md["flexicodec.decoder_dim"]
    p = "dac.decoder.model."
    req[p + "0.weight"] = (D, lat, 7)
    req[p + "0.bias"] = (D,)
    for i, s in enumerate(md["flexicodec.decoder_rates"]):
        cin, cout = D // 2 ** i, D // 2 ** (i + 1)
        b = f"{p}{i + 1}.block."
        req[b + "0.alpha"] = (1, cin, 1)
        req[b + "1.weight"] = (cin, cout, 2 * s)
        req[b + "1.bias"] = (cout,)
        for j in range(len(RU_DILATIONS)):
            r = f"{b}{j + 2}.block."
            req.update({r + "0.alpha": (1, cout, 1), r + "1.weight": (cout, cout, 7),
                        r + "1.bias": (cout,), r + "2.alpha": (1, cout, 1),
                        r + "3.weight": (cout, cout, 1), r + "3.bias": (cout,)})
    n = len(md["flexicodec.decoder_rates"])
    cl = D // 2 ** n
    req[f"{p}{n + 1}.alpha"] = (1, cl, 1)
    req[f"{p}{n + 2}.weight"] = (1, cl, 7)
    req[f"{p}{n + 2}.bias"] = (1,)
    tr = md["flexicodec.transformer.num_layers"]
    td, ff = md["flexicodec.transformer.dim"], md["flexicodec.transformer.dim_feedforward"]
    for i in range(tr):
        q = f"bottleneck_transformer.transformer.layers.{i}."
        req.update({q + "self_attn.in_proj_weight": (3 * td, td),
                    q + "self_attn.out_proj.weight": (td, td),
                    q + "norm1.weight": (td,), q + "norm1.bias": (td,),
                    q + "norm2.weight": (td,), q + "norm2.bias": (td,),
                    q + "linear1.weight": (ff, td), q + "linear2.weight": (td, ff),
                    q + "layer_scale_1.scale": (td,), q + "layer_scale_2.scale": (td,)})
    if md["flexicodec.transformer.has_input_proj"]:
        req["bottleneck_transformer.input_proj.weight"] = (td, lat)
        req["bottleneck_transformer.output_projs.0.weight"] = (lat, td)
    if "flexicodec.ssl_dim" in md:  # --with-encoder: the encode side is required too
        req.update(opt)
        opt = {}
        req.update(expected_encoder(md))
    return req, opt


def expected_encoder(md):
    """Encode-side tensors (--with-encoder) -> expected shape."""
    req = {}
    lat, C, I = md["flexicodec.latent_dim"], md["flexicodec.convnext_dim"], \
        md["flexicodec.convnext_intermediate_dim"]
    ssl = md["flexicodec.ssl_dim"]
    d = md["flexicodec.encoder_dim"]
    rates = md["flexicodec.encoder_rates"]
    p = "dac.encoder.block."
    req[p + "0.weight"] = (d, 1, 7)
    req[p + "0.bias"] = (d,)
    for i, s in enumerate(rates):
        cin, cout = d * 2 ** i, d * 2 ** (i + 1)
        b = f"{p}{i + 1}.block."
        for j in range(len(RU_DILATIONS)):
            r = f"{b}{j}.block."
            req.update({r + "0.alpha": (1, cin, 1), r + "1.weight": (cin, cin, 7),
                        r + "1.bias": (cin,), r + "2.alpha": (1, cin, 1),
                        r + "3.weight": (cin, cin, 1), r + "3.bias": (cin,)})
        req[b + "3.alpha"] = (1, cin, 1)
        req[b + "4.weight"] = (cout, cin, 2 * s)
        req[b + "4.bias"] = (cout,)
    n, cl = len(rates), d * 2 ** len(rates)
    req[f"{p}{n + 1}.alpha"] = (1, cl, 1)
    req[f"{p}{n + 2}.weight"] = (lat, cl, 3)
    req[f"{p}{n + 2}.bias"] = (lat,)
    req["convnext_encoder.0.weight"] = (C, ssl, 1)
    req["convnext_encoder.0.bias"] = (C,)
    for i in range(1, md["flexicodec.convnext_layers"] + 1):
        q = f"convnext_encoder.{i}."
        req.update({q + "dwconv.weight": (C, 1, CONVNEXT_KERNEL), q + "dwconv.bias": (C,),
                    q + "norm.weight": (C,), q + "norm.bias": (C,),
                    q + "pwconv1.weight": (I, C), q + "pwconv1.bias": (I,),
                    q + "pwconv2.weight": (C, I), q + "pwconv2.bias": (C,)})
    for which in ("semantic", "acoustic"):
        m = f"flexicodec.{which}_aggregator."
        td, ff, io = md[m + "dim"], md[m + "dim_feedforward"], md[m + "in_out_dim"]
        a = f"{which}_aggregator."
        req[a + "query_embedding"] = (1, io, 1)
        if io != td:
            req[a + "transformer.input_proj.weight"] = (td, io)
            req[a + "transformer.output_projs.0.weight"] = (io, td)
        for i in range(md[m + "num_layers"]):
            q = f"{a}transformer.transformer.layers.{i}."
            req.update({q + "self_attn.in_proj_weight": (3 * td, td),
                        q + "self_attn.out_proj.weight": (td, td),
                        q + "norm1.weight": (td,), q + "norm1.bias": (td,),
                        q + "norm2.weight": (td,), q + "norm2.bias": (td,),
                        q + "linear1.weight": (ff, td), q + "linear2.weight": (td, ff),
                        q + "layer_scale_1.scale": (td,), q + "layer_scale_2.scale": (td,)})
    return req


def collect(ck, prefixes=DECODE_PREFIXES):
    """Tensors of the checkpoint under `prefixes` as {name: float32 tensor}, weight norm
    folded."""
    out = {}
    done = set()
    for name in sorted(ck.names):
        if not name.startswith(prefixes) or name in done:
            continue
        base = None
        for suf in (".weight_g", ".weight_v", ".parametrizations.weight.original0",
                    ".parametrizations.weight.original1"):
            if name.endswith(suf):
                base = name[: -len(suf)]
        if base is not None:
            pair = wn_pair(ck.names, base)
            if pair is None:
                raise SystemExit(f"{name}: weight-norm half without its partner")
            out[base + ".weight"] = fold_wn(ck.get(pair[0]), ck.get(pair[1]), base)
            done.update(pair)
            continue
        out[name] = ck.get(name)
    return out


def is_matrix_weight(name, t):
    """Linear / conv weights (the ones --dtype f16 narrows); codebooks stay f32."""
    return t.dim() >= 2 and name.endswith("weight") and not name.endswith("codebook.weight")


def load_sensevoice_converter():
    """tools/convert/sensevoice.py as a module (imported by path)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sensevoice.py")
    spec = importlib.util.spec_from_file_location("sotto_convert_sensevoice", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def convert(ckpt_path, config_path, out_path, dtype="f32", name=None, quiet=False,
            with_encoder=False, sensevoice=None):
    """sensevoice (with with_encoder): dict(sd=numpy state dict without prefix, shift, scale,
    heads, optional f16: its matrices as f16, default as dtype) to also write the SenseVoice
    encoder and its CMVN (tools/convert/sensevoice.py)."""
    if sensevoice is not None and not with_encoder:
        raise SystemExit("SenseVoice goes with the encode side: add --with-encoder")
    kw = load_config(config_path)
    ck = Checkpoint(ckpt_path)
    meta = hparams(kw, ck, with_encoder)
    prefixes = DECODE_PREFIXES + (ENCODE_PREFIXES if with_encoder else ())
    tensors = collect(ck, prefixes)
    req, opt = expected(meta)
    missing = [n for n in req if n not in tensors]
    bad = [f"{n}: {tuple(tensors[n].shape)}, expected {s}" for n, s in {**req, **opt}.items()
           if n in tensors and tuple(tensors[n].shape) != tuple(s)]
    tr_prefix = "bottleneck_transformer."
    extra = [n for n in tensors if n not in req and n not in opt]
    extra_tr = [n for n in extra if n.startswith(tr_prefix)]
    extra_other = [n for n in extra if not n.startswith(tr_prefix)]
    n_sem = sum(1 for n in ck.names if n.startswith("semantic_model."))
    n_enc = sum(1 for n in ck.names if not n.startswith(prefixes)) - n_sem
    side = "decode and encode side" if with_encoder else "decode side"
    if not quiet or missing or bad:
        print(f"{os.path.basename(ckpt_path)}: {side} {len(req) - len(missing)}/{len(req)} "
              f"expected tensors present (weight norm folded), optional encoder-side "
              f"{sum(1 for n in opt if n in tensors)}/{len(opt)}; skipped: "
              f"{n_enc} encoder-side and {n_sem} semantic_model.* keys")
        if extra_tr:
            print(f"  bottleneck_transformer: {len(extra_tr)} further tensors copied as is "
                  f"(e.g. {extra_tr[0]})")
        if extra_other:
            print(f"  unexpected decode-side tensors (copied): {', '.join(extra_other[:6])}"
                  + (" ..." if len(extra_other) > 6 else ""))
    if missing:
        raise SystemExit(f"missing {side} tensors ({len(missing)}): "
                         + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
    if bad:
        raise SystemExit("tensors of the wrong shape: " + "; ".join(bad[:6]))
    extra_other = [n for n in extra_other if not n.startswith(prefixes)]

    if name is None:
        name = os.path.splitext(os.path.basename(ckpt_path))[0]
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    w = gguf.GGUFWriter(out_path, ARCH)
    w.add_name(name)
    w.add_string("sotto.converter", "tools/convert/flexicodec.py")
    w.add_string("sotto.dtype", dtype)
    w.add_string("sotto.source.checkpoint", os.path.basename(ckpt_path))
    T = gguf.GGUFValueType
    for key, value, kind in meta:
        if kind == "u32":
            w.add_uint32(key, int(value))
        elif kind == "f32":
            w.add_float32(key, float(value))
        elif kind == "f64":
            w.add_float64(key, float(value))
        elif kind == "str":
            w.add_string(key, value)
        elif kind == "bool":
            w.add_bool(key, bool(value))
        elif kind == "arr_i32":
            w.add_key_value(key, [int(x) for x in value], T.ARRAY, T.INT32)
        else:
            raise AssertionError(kind)
    n_bytes = 0
    for tname in sorted(tensors):
        t = tensors[tname].contiguous()
        a = t.numpy()
        if dtype == "f16" and is_matrix_weight(tname, t):
            a = a.astype(np.float16)
        a = np.ascontiguousarray(a)
        if a.ndim == 0:
            a = a.reshape(1)
        w.add_tensor(tname, a)
        n_bytes += a.nbytes
    sv_note = ""
    if sensevoice is not None:
        svc = load_sensevoice_converter()
        sizes = svc.add_to_writer(w, sensevoice["sd"], sensevoice["shift"], sensevoice["scale"],
                                  int(sensevoice.get("heads", 4)), prefix="semantic_model.",
                                  f16=bool(sensevoice.get("f16", dtype == "f16")))
        md = {k: v for k, v, _ in meta}
        if sizes["output_size"] != md["flexicodec.ssl_dim"]:
            raise SystemExit(f"SenseVoice output width {sizes['output_size']} differs from the "
                             f"codec's semantic width {md['flexicodec.ssl_dim']}")
        sv_note = f" + SenseVoice ({sizes['num_blocks']} blocks, width {sizes['output_size']})"
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if not quiet:
        print(f"wrote {out_path}{sv_note}: {len(tensors)} tensors, "
              f"{n_bytes / 1e6:.2f} MB of weights ({dtype}), {len(meta)} flexicodec.* keys")
    return out_path


def main():
    ap = argparse.ArgumentParser(description=__doc__, epilog="metadata written:" + METADATA,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="<name>.safetensors")
    ap.add_argument("out", help="output .gguf")
    ap.add_argument("--config", help="YAML with a top-level 'model:' (default: "
                    "<name>_config.yaml next to the checkpoint)")
    ap.add_argument("--dtype", choices=("f32", "f16"), default="f32",
                    help="storage of linear/conv weights (norms, biases, codebooks stay f32)")
    ap.add_argument("--name", help="general.name (default: the checkpoint's file name)")
    ap.add_argument("--with-encoder", action="store_true",
                    help="also write the encode side (DAC encoder, ConvNeXt encoder, FSQ "
                    "project_in, RVQ in_proj, both query-token aggregators) and its metadata; "
                    "SenseVoice only with --sensevoice/--am-mvn")
    ap.add_argument("--sensevoice", metavar="MODEL_PT",
                    help="with --with-encoder: also write SenseVoice-Small from this checkpoint "
                    "(FunASR model.pt, or one holding it under semantic_model.)")
    ap.add_argument("--am-mvn", help="SenseVoice's CMVN file (am.mvn), with --sensevoice")
    ap.add_argument("--sensevoice-heads", type=int, default=4,
                    help="SenseVoice attention heads (default 4)")
    args = ap.parse_args()
    if bool(args.sensevoice) != bool(args.am_mvn):
        sys.exit("--sensevoice and --am-mvn go together")
    if args.sensevoice and not args.with_encoder:
        sys.exit("--sensevoice needs --with-encoder")
    config = args.config
    if config is None:
        stem = os.path.splitext(args.checkpoint)[0]
        config = stem + "_config.yaml"
    for p in (args.checkpoint, config):
        if not os.path.isfile(p):
            sys.exit(f"not found: {p}")
    sv = None
    if args.sensevoice:
        for p in (args.sensevoice, args.am_mvn):
            if not os.path.isfile(p):
                sys.exit(f"not found: {p}")
        svc = load_sensevoice_converter()
        shift, scale = svc.load_cmvn(args.am_mvn)
        sv = dict(sd=svc.load_state_dict(args.sensevoice), shift=shift, scale=scale,
                  heads=args.sensevoice_heads)
    convert(args.checkpoint, config, args.out, args.dtype, args.name,
            with_encoder=args.with_encoder, sensevoice=sv)


if __name__ == "__main__":
    main()
