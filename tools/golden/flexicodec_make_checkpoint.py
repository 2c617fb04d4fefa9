"""Random-weight FlexiCodec checkpoints in the official release layout
(`<name>.safetensors` + `<name>_config.yaml`, whose single top-level key `model:` holds the
keyword arguments of `flexicodec.modeling_flexicodec.FlexiCodec`), for parity fixtures and
converter checks without downloading the released model.

Configs:
- `12hz_v1`: the full released configuration (the repository's conf/model_config.yaml plus
  the constructor defaults it relies on: decoder_dim 1536, codebook_dim 8, convnext_dim 768,
  4 ConvNeXt layers, FSQ levels [8,8,8,8,8], transformer_dim 512);
- `small`: latent / transformer width 64 (2 layers, 4 heads, FFN 128), ConvNeXt 96 wide with
  2 layers of intermediate width 128, DAC decoder_dim 96 with the released rates
  [2,8,5,4,4] (odd stride 5 included), 4 RVQ stages of 64 entries (code dim 8), FSQ levels
  [8,8,8,8,8]; the encoder side is shrunk as far as the classes allow.

How the official model is built offline. `FlexiCodec.__init__` loads SenseVoice-Small through
`funasr.AutoModel`; here that name is replaced, for the duration of the constructor, by a stub
whose `.model` is an empty module, so no SenseVoice weights are needed and the state dict has no
`semantic_model.*` keys (the released checkpoint is loaded with strict=False for the same
reason). Everything else is the package's own code. The ConvNeXt intermediate width is
hard-coded to 2048 inside FlexiCodec; for the small config the two ConvNeXt stacks are rebuilt
from the package's own `ConvNeXtBlock` and `WNConv1d` with intermediate width 128 (the only
change: the converter reads that width from the tensor shapes).

The official initialisation leaves LayerNorms at identity, biases at zero and Snake alphas at 1;
every parameter is re-drawn here (fixed seed), weight-norm magnitudes `weight_g` included, so a
parity test cannot pass by skipping one. The DAC decoder's gains are then rescaled layer by layer
so that activations stay of unit scale and the waveform inside tanh's range (calibrate_output).

Usage: python tools/golden/flexicodec_make_checkpoint.py OUT_DIR [--configs NAME ...] [--seed N]
(writes OUT_DIR/<name>.safetensors and OUT_DIR/<name>_config.yaml)
"""

import argparse
import contextlib
import copy
import os
import sys
import types

if __name__ == "__main__":
    # Run as a script, this folder is first on sys.path and its flexicodec.py (the fixture
    # writer) would shadow the official package imported below: take the folder off the path.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import torch  # noqa: E402
import yaml  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402

RELEASED = dict(
    sample_rate=16000, encoder_dim=32, encoder_rates=[4, 4, 5, 8, 2],
    decoder_rates=[2, 8, 5, 4, 4], n_codebooks=24, quantizer_dropout=1.0, codebook_size=4096,
    semantic_codebook_size=32768, is_causal=False, use_similarity_alignment=True,
    similarity_threshold=0.91, semantic_downsample_factor=1.33333, skip_normalize=True,
    semantic_model_type="sensevoice", latent_dim=512, ssl_dim=512,
    use_bottleneck_transformer=True, transformer_num_layers=32,
    transformer_dim_feedforward=2048, transformer_num_heads=8, transformer_causal=False,
    transformer_context_frames=16, max_tokens_per_group=8, semantic_model_path=None,
    use_query_token_aggregator=True, use_dynamic_similarity_threshold=True,
    similarity_threshold_lower=0.8, similarity_threshold_upper=1.0,
)

SMALL = dict(
    sample_rate=16000, encoder_dim=4, encoder_rates=[4, 4, 5, 8, 2],
    decoder_rates=[2, 8, 5, 4, 4], decoder_dim=96, n_codebooks=4, quantizer_dropout=1.0,
    codebook_size=64, codebook_dim=8, is_causal=False, use_similarity_alignment=True,
    similarity_threshold=0.91, semantic_downsample_factor=1.33333, skip_normalize=True,
    semantic_model_type="sensevoice", latent_dim=64, ssl_dim=512, convnext_dim=96,
    convnext_layers=2, fsq_config={"levels": [8, 8, 8, 8, 8]},
    use_bottleneck_transformer=True, transformer_num_layers=2, transformer_dim=64,
    transformer_dim_feedforward=128, transformer_num_heads=4, transformer_causal=False,
    transformer_context_frames=16, max_tokens_per_group=8, semantic_model_path=None,
    use_query_token_aggregator=True, agg_transformer_num_layers=1, agg_transformer_dim=64,
    agg_transformer_num_heads=4, agg_transformer_dim_feedforward=128,
    use_dynamic_similarity_threshold=True, similarity_threshold_lower=0.8,
    similarity_threshold_upper=1.0,
)

CONFIGS = {"12hz_v1": RELEASED, "small": SMALL}
# ConvNeXt intermediate width per config (FlexiCodec itself always builds 2048).
CONVNEXT_INTERMEDIATE = {"12hz_v1": 2048, "small": 128}


@contextlib.contextmanager
def no_sensevoice():
    """Replaces funasr.AutoModel inside the FlexiCodec module by a stub with an empty model."""
    import flexicodec.modeling_flexicodec as mf

    saved = mf.AutoModel
    mf.AutoModel = lambda *a, **k: types.SimpleNamespace(model=nn.Module())
    try:
        yield
    finally:
        mf.AutoModel = saved


def rebuild_convnext(model, kwargs, intermediate):
    """The two ConvNeXt stacks of FlexiCodec.__init__, rebuilt with another intermediate width
    from the package's own classes (same structure and names)."""
    from flexicodec.cnn import ConvNeXtBlock
    from flexicodec.dac_layers import WNConv1d

    dim = kwargs.get("convnext_dim", 768)
    layers = kwargs.get("convnext_layers", 4)
    causal = kwargs.get("is_causal", True)
    model.convnext_encoder = nn.Sequential(
        WNConv1d(model.ssl_dim, dim, kernel_size=1),
        *[ConvNeXtBlock(dim=dim, intermediate_dim=intermediate, is_causal=causal)
          for _ in range(layers)])
    model.convnext_decoder = nn.Sequential(
        *[ConvNeXtBlock(dim=dim, intermediate_dim=intermediate, is_causal=causal)
          for _ in range(layers)],
        WNConv1d(dim, model.dac_bn_dim, kernel_size=1))


def build(name):
    """The official FlexiCodec for a config (untrained, no semantic model), in eval mode."""
    from flexicodec.modeling_flexicodec import FlexiCodec

    kwargs = copy.deepcopy(CONFIGS[name])
    with no_sensevoice():
        model = FlexiCodec(**kwargs)
    if CONVNEXT_INTERMEDIATE[name] != 2048:
        rebuild_convnext(model, kwargs, CONVNEXT_INTERMEDIATE[name])
    return model.eval()


def randomize(model, seed):
    """Draws every parameter (fixed seed) so that no norm, bias, alpha or gain is trivial."""
    g = torch.Generator().manual_seed(seed)

    def normal(t, mean, std):
        with torch.no_grad():
            t.copy_(mean + std * torch.randn(t.shape, generator=g))

    def uniform(t, lo, hi):
        with torch.no_grad():
            t.copy_(lo + (hi - lo) * torch.rand(t.shape, generator=g))

    for pname, p in model.named_parameters():
        if pname.endswith(".alpha"):  # Snake
            uniform(p, 0.3, 2.0)
        elif pname.endswith("weight_g"):  # weight-norm gain: close to the norm of weight_v
            uniform(p, 0.6, 1.4)
        elif pname.endswith("codebook.weight"):
            normal(p, 0.0, 1.0)
        elif "norm" in pname and p.dim() == 1 and pname.endswith(".weight"):
            uniform(p, 0.5, 1.5)
        elif pname.endswith(".scale") or pname.endswith("gamma"):  # layer scales
            uniform(p, 0.05, 0.5)
        elif pname.endswith("query_embedding"):
            normal(p, 0.0, 0.5)
        elif pname.endswith("bias"):
            normal(p, 0.0, 0.1)
        elif p.dim() >= 2:  # weight_v, Linear / conv weights, in_proj_weight
            fan_in = p[0].numel()
            normal(p, 0.0, 1.0 / fan_in ** 0.5)
        else:
            raise ValueError(f"unexpected parameter {pname} {tuple(p.shape)}")
    calibrate_output(model, g)
    return model


def calibrate_output(model, g):
    """Rescales the weight-norm gains of the DAC decoder, layer by layer on a random latent of
    RMS 2 (the scale of decoded codes): the first conv and each transposed conv to an output
    RMS of 1, each residual unit's branch to 0.3 times its input, the last conv to 0.5 before
    tanh. With plain random draws the residual stacks grow the signal by orders of magnitude:
    Snake then sees arguments in the hundreds, float32 rounding is amplified to ~1e-3 at the
    output and tanh saturates, which would make the parity test both flaky and blind."""
    dec = model.dac.decoder.model

    def rms(t):
        return float(t.pow(2).mean().sqrt())

    def scale(conv, x, target):
        with torch.no_grad():
            conv.weight_g.mul_(target / rms(conv(x)))
            return conv(x)

    x = 2.0 * torch.randn(1, model.dac.latent_dim, 4, generator=g)
    with torch.no_grad():
        x = scale(dec[0], x, 1.0)
        for blk in dec[1:-3]:  # DecoderBlocks: Snake, ConvTranspose1d, 3 residual units
            x = scale(blk.block[1], blk.block[0](x), 1.0)
            for ru in blk.block[2:]:
                h = ru.block[2](ru.block[1](ru.block[0](x)))
                x = x + scale(ru.block[3], h, 0.3 * rms(x))
        scale(dec[-2], dec[-3](x), 0.5)


def save(model, name, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    sd = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(out_dir, f"{name}.safetensors"))
    with open(os.path.join(out_dir, f"{name}_config.yaml"), "w") as f:
        yaml.safe_dump({"model": copy.deepcopy(CONFIGS[name])}, f, sort_keys=False)
    return sd


def load_official(directory, name):
    """The official loading path for a local checkpoint: FlexiCodec(**config['model']) (without
    SenseVoice, ConvNeXt width from CONVNEXT_INTERMEDIATE), then load_state_dict(strict=False)
    as infer.py does; returns the model in eval mode."""
    from safetensors.torch import load_file

    model = build(name)
    sd = load_file(os.path.join(directory, f"{name}.safetensors"))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if unexpected or [k for k in missing if not k.startswith("semantic_model.")]:
        raise SystemExit(f"{name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()


def make(name, out_dir, seed):
    torch.manual_seed(seed)
    model = randomize(build(name), seed)
    sd = save(model, name, out_dir)
    n = sum(v.numel() for v in sd.values())
    print(f"wrote {os.path.join(out_dir, name)}.safetensors ({n / 1e6:.2f} M values)")
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=["small"])
    ap.add_argument("--seed", type=int, default=20251001)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.configs:
        make(name, args.out_dir, args.seed)


if __name__ == "__main__":
    main()
