"""Converter from an official Vocos checkpoint (config.yaml + pytorch_model.bin, the layout of
the released `charactr/vocos-*` models and of tools/train/vocos) to Sotto's GGUF.

What it writes
- `general.architecture = "vocos"`, `general.name`, and every hyperparameter the SDK needs
  under `vocos.*` (listed in METADATA below): feature kind, sample rate, backbone sizes,
  LayerNorm vs AdaLayerNorm, ISTFT head n_fft/hop/padding, and either the full mel front-end
  description or the EnCodec codebook layout.
- Every tensor under its official state_dict name and PyTorch shape (the gguf writer stores
  dims innermost-first; the SDK reader reverses them back). `--dtype f16` stores the 2-D and
  3-D weights of linears and convolutions as f16; norms, biases, layer scales, AdaLayerNorm
  tables, codebooks, filterbanks and windows stay f32.

What it skips
- `feature_extractor.encodec.*`: the EnCodec encoder/decoder weights. The released
  vocos-encodec checkpoint does not contain them (the official loader re-attaches the
  pretrained EnCodec model after loading); the SDK takes EnCodec codes as input and needs only
  `feature_extractor.codebook_weights`. Lightning training checkpoints (`state_dict` with the
  discriminators) are accepted and reduced to the generator's keys.

Defaults for keys missing from init_args are the official class defaults of vocos 0.1.0
(MelSpectrogramFeatures, EncodecFeatures, VocosBackbone, ISTFTHead), restated here so the
converter needs only torch, numpy, pyyaml and gguf.

Usage:
  python tools/convert/vocos.py CHECKPOINT_DIR out.gguf [--dtype f16] [--name NAME]
  python tools/convert/vocos.py --config config.yaml --model pytorch_model.bin out.gguf
"""

import argparse
import math
import os
import sys

import numpy as np
import torch
import yaml

try:
    import gguf
except ImportError as e:  # pragma: no cover
    raise SystemExit("tools/convert needs the 'gguf' package: see tools/README.md") from e

ARCH = "vocos"
GENERATOR_PREFIXES = ("feature_extractor.", "backbone.", "head.")
SKIPPED_PREFIXES = ("feature_extractor.encodec.",)

# Official class defaults (vocos 0.1.0).
MEL_DEFAULTS = dict(sample_rate=24000, n_fft=1024, hop_length=256, n_mels=100, padding="center")
ENCODEC_DEFAULTS = dict(encodec_model="encodec_24khz", bandwidths=[1.5, 3.0, 6.0, 12.0])
HEAD_DEFAULTS = dict(padding="same")
# EnCodec models the official EncodecFeatures accepts: sample rate, frame rate, bins per codebook.
ENCODEC_MODELS = {
    "encodec_24khz": dict(sample_rate=24000, frame_rate=75, bins=1024),
    "encodec_48khz": dict(sample_rate=48000, frame_rate=150, bins=1024),
}
# Fixed by the official modules rather than by the config.
CONVNEXT_KERNEL = 7
NORM_EPS = 1e-6
MAG_CLIP = 100.0
MEL_LOG_FLOOR = 1e-7

METADATA = """
vocos.feature_extractor          "mel" | "encodec"
vocos.sample_rate                audio rate in and out (Hz)
vocos.input_channels             feature channels (n_mels, or the codebook embedding width)
vocos.dim / intermediate_dim / num_layers     backbone sizes
vocos.layer_scale                bool: ConvNeXt blocks carry `gamma`
vocos.layer_scale_init_value     float (informational)
vocos.adanorm_num_embeddings     0 = LayerNorm, else AdaLayerNorm rows (bandwidth ids)
vocos.kernel_size, vocos.norm_eps           7, 1e-6 (fixed by the official modules)
vocos.n_fft / hop_length / win_length / padding   ISTFT head ("center" | "same")
vocos.mag_clip                   100: the head clips exp(log-magnitude) to this
mel:     vocos.mel.{n_fft, hop_length, win_length, n_mels, padding, center, pad_mode, window,
         f_min, f_max, power, norm, scale, log_floor}
encodec: vocos.encodec.{model, bandwidths, bins, frame_rate_hz, num_codebooks,
         codebooks_per_bandwidth, codebook_dim}
"""


def class_name(section):
    return section["class_path"].rsplit(".", 1)[-1]


def load_config(path):
    with open(path) as f:
        cfg = yaml.safe_load(f)
    for key in ("feature_extractor", "backbone", "head"):
        if key not in cfg or "class_path" not in cfg[key]:
            raise SystemExit(f"{path}: missing section '{key}' with a class_path")
    return cfg


def load_state_dict(path):
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]  # Lightning checkpoint
    out = {}
    for k, v in sd.items():
        if not torch.is_tensor(v):
            continue
        if k.startswith(SKIPPED_PREFIXES) or not k.startswith(GENERATOR_PREFIXES):
            continue
        out[k] = v
    if not out:
        raise SystemExit(f"{path}: no feature_extractor/backbone/head tensors")
    return out


def encodec_codebooks_for(bandwidth_kbps, frame_rate, bins):
    """Codebooks EnCodec uses at a bandwidth (its get_num_quantizers_for_bandwidth rule)."""
    per_q_kbps = math.log2(bins) * frame_rate / 1000.0
    return int(max(1, math.floor(bandwidth_kbps / per_q_kbps)))


def hparams(cfg, sd):
    """All metadata as (key, value, kind) triples; kind in u32, f32, str, bool, arr_f32, arr_i32."""
    fe, bb, hd = cfg["feature_extractor"], cfg["backbone"], cfg["head"]
    if class_name(bb) != "VocosBackbone":
        raise SystemExit(f"unsupported backbone {bb['class_path']} (only VocosBackbone)")
    if class_name(hd) != "ISTFTHead":
        raise SystemExit(f"unsupported head {hd['class_path']} (only ISTFTHead)")
    b = dict(bb.get("init_args") or {})
    h = dict(HEAD_DEFAULTS, **(hd.get("init_args") or {}))
    for k in ("input_channels", "dim", "intermediate_dim", "num_layers"):
        if k not in b:
            raise SystemExit(f"backbone.init_args.{k} missing")
    for k in ("dim", "n_fft", "hop_length"):
        if k not in h:
            raise SystemExit(f"head.init_args.{k} missing")
    if h["dim"] != b["dim"]:
        raise SystemExit(f"head dim {h['dim']} != backbone dim {b['dim']}")
    if h["padding"] not in ("center", "same"):
        raise SystemExit(f"head padding {h['padding']!r}")
    ls_init = b.get("layer_scale_init_value") or 1.0 / b["num_layers"]
    has_gamma = "backbone.convnext.0.gamma" in sd if b["num_layers"] > 0 else False
    ada = b.get("adanorm_num_embeddings") or 0

    meta = [
        ("vocos.input_channels", b["input_channels"], "u32"),
        ("vocos.dim", b["dim"], "u32"),
        ("vocos.intermediate_dim", b["intermediate_dim"], "u32"),
        ("vocos.num_layers", b["num_layers"], "u32"),
        ("vocos.layer_scale", has_gamma, "bool"),
        ("vocos.layer_scale_init_value", float(ls_init), "f32"),
        ("vocos.adanorm_num_embeddings", ada, "u32"),
        ("vocos.kernel_size", CONVNEXT_KERNEL, "u32"),
        ("vocos.norm_eps", NORM_EPS, "f32"),
        ("vocos.n_fft", h["n_fft"], "u32"),
        ("vocos.hop_length", h["hop_length"], "u32"),
        ("vocos.win_length", h["n_fft"], "u32"),
        ("vocos.padding", h["padding"], "str"),
        ("vocos.mag_clip", MAG_CLIP, "f32"),
    ]

    kind = class_name(fe)
    fa = fe.get("init_args") or {}
    if kind == "MelSpectrogramFeatures":
        m = dict(MEL_DEFAULTS, **fa)
        if m["padding"] not in ("center", "same"):
            raise SystemExit(f"feature_extractor padding {m['padding']!r}")
        if m["n_mels"] != b["input_channels"]:
            raise SystemExit(f"n_mels {m['n_mels']} != backbone input_channels "
                             f"{b['input_channels']}")
        if m["hop_length"] != h["hop_length"]:
            raise SystemExit(f"mel hop {m['hop_length']} != head hop {h['hop_length']}")
        sr = m["sample_rate"]
        meta = [("vocos.feature_extractor", "mel", "str"), ("vocos.sample_rate", sr, "u32")] + meta
        meta += [
            ("vocos.mel.n_fft", m["n_fft"], "u32"),
            ("vocos.mel.hop_length", m["hop_length"], "u32"),
            ("vocos.mel.win_length", m["n_fft"], "u32"),
            ("vocos.mel.n_mels", m["n_mels"], "u32"),
            # "center": torch.stft(center=True) reflect-pads n_fft/2 each side; "same": the
            # audio is reflect-padded by (win - hop)/2 each side and framed with center=False.
            ("vocos.mel.padding", m["padding"], "str"),
            ("vocos.mel.center", m["padding"] == "center", "bool"),
            ("vocos.mel.pad_mode", "reflect", "str"),
            ("vocos.mel.window", "hann_periodic", "str"),
            ("vocos.mel.f_min", 0.0, "f32"),
            ("vocos.mel.f_max", sr / 2.0, "f32"),
            ("vocos.mel.power", 1.0, "f32"),
            ("vocos.mel.norm", "none", "str"),
            ("vocos.mel.scale", "htk", "str"),
            ("vocos.mel.log_floor", MEL_LOG_FLOOR, "f32"),
        ]
        fb = sd.get("feature_extractor.mel_spec.mel_scale.fb")
        if fb is None or tuple(fb.shape) != (m["n_fft"] // 2 + 1, m["n_mels"]):
            raise SystemExit("feature_extractor.mel_spec.mel_scale.fb missing or of the "
                             "wrong shape")
    elif kind == "EncodecFeatures":
        e = dict(ENCODEC_DEFAULTS, **fa)
        if e["encodec_model"] not in ENCODEC_MODELS:
            raise SystemExit(f"unsupported encodec_model {e['encodec_model']!r}")
        em = ENCODEC_MODELS[e["encodec_model"]]
        cb = sd.get("feature_extractor.codebook_weights")
        if cb is None or cb.dim() != 2:
            raise SystemExit("feature_extractor.codebook_weights missing")
        if cb.shape[0] % em["bins"]:
            raise SystemExit(f"codebook_weights rows {cb.shape[0]} not a multiple of {em['bins']}")
        if cb.shape[1] != b["input_channels"]:
            raise SystemExit(f"codebook width {cb.shape[1]} != input_channels "
                             f"{b['input_channels']}")
        n_q = cb.shape[0] // em["bins"]
        bws = [float(x) for x in e["bandwidths"]]
        per_bw = [encodec_codebooks_for(x, em["frame_rate"], em["bins"]) for x in bws]
        if max(per_bw) != n_q:
            raise SystemExit(f"{n_q} stored codebooks but bandwidths {bws} need {max(per_bw)}")
        if ada and ada < len(bws):
            raise SystemExit(f"{len(bws)} bandwidths but {ada} AdaLayerNorm rows")
        if h["hop_length"] * em["frame_rate"] != em["sample_rate"]:
            raise SystemExit(f"head hop {h['hop_length']} does not match the EnCodec frame rate")
        meta = [("vocos.feature_extractor", "encodec", "str"),
                ("vocos.sample_rate", em["sample_rate"], "u32")] + meta
        meta += [
            ("vocos.encodec.model", e["encodec_model"], "str"),
            ("vocos.encodec.bandwidths", bws, "arr_f32"),
            ("vocos.encodec.bins", em["bins"], "u32"),
            ("vocos.encodec.frame_rate_hz", float(em["frame_rate"]), "f32"),
            ("vocos.encodec.num_codebooks", n_q, "u32"),
            ("vocos.encodec.codebooks_per_bandwidth", per_bw, "arr_i32"),
            ("vocos.encodec.codebook_dim", int(cb.shape[1]), "u32"),
        ]
    else:
        raise SystemExit(f"unsupported feature extractor {fe['class_path']}")
    return meta


def is_matrix_weight(name, t):
    """Linear / conv weights (the ones --dtype f16 narrows)."""
    return name.endswith(".weight") and t.dim() >= 2 and not (
        name.endswith(("scale.weight", "shift.weight")))


def expected_names(cfg, meta):
    """Tensors the SDK reads; missing ones are an error here rather than at load time."""
    md = {k: v for k, v, _ in meta}
    ada = md["vocos.adanorm_num_embeddings"] > 0
    norm = ["scale.weight", "shift.weight"] if ada else ["weight", "bias"]
    names = ["backbone.embed.weight", "backbone.embed.bias",
             "backbone.final_layer_norm.weight", "backbone.final_layer_norm.bias",
             "head.out.weight", "head.out.bias"]
    names += [f"backbone.norm.{n}" for n in norm]
    for i in range(md["vocos.num_layers"]):
        p = f"backbone.convnext.{i}."
        names += [p + n for n in ("dwconv.weight", "dwconv.bias", "pwconv1.weight", "pwconv1.bias",
                                  "pwconv2.weight", "pwconv2.bias")]
        names += [p + "norm." + n for n in norm]
        if md["vocos.layer_scale"]:
            names.append(p + "gamma")
    if md["vocos.feature_extractor"] == "mel":
        names.append("feature_extractor.mel_spec.mel_scale.fb")
    else:
        names.append("feature_extractor.codebook_weights")
    return names


def convert(config_path, model_path, out_path, dtype="f32", name=None, quiet=False):
    cfg = load_config(config_path)
    sd = load_state_dict(model_path)
    meta = hparams(cfg, sd)
    missing = [n for n in expected_names(cfg, meta) if n not in sd]
    if missing:
        raise SystemExit(f"{model_path}: missing tensors: {', '.join(missing[:8])}"
                         + (" ..." if len(missing) > 8 else ""))
    if name is None:  # the checkpoint folder's name (its parent's for a "checkpoint" folder)
        folder = os.path.dirname(os.path.abspath(config_path))
        name = os.path.basename(folder)
        if name == "checkpoint":
            name = os.path.basename(os.path.dirname(folder))
        name = name or "vocos"

    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    w = gguf.GGUFWriter(out_path, ARCH)
    w.add_name(name)
    w.add_string("sotto.converter", "tools/convert/vocos.py")
    w.add_string("sotto.source.feature_extractor", cfg["feature_extractor"]["class_path"])
    w.add_string("sotto.dtype", dtype)
    T = gguf.GGUFValueType
    for key, value, kind in meta:
        if kind == "u32":
            w.add_uint32(key, int(value))
        elif kind == "f32":
            w.add_float32(key, float(value))
        elif kind == "str":
            w.add_string(key, value)
        elif kind == "bool":
            w.add_bool(key, bool(value))
        elif kind == "arr_f32":
            w.add_key_value(key, [float(x) for x in value], T.ARRAY, T.FLOAT32)
        elif kind == "arr_i32":
            w.add_key_value(key, [int(x) for x in value], T.ARRAY, T.INT32)
        else:
            raise AssertionError(kind)

    n_bytes = 0
    for tname in sorted(sd):
        t = sd[tname].detach().to(torch.float32).contiguous()
        a = t.numpy()
        if dtype == "f16" and is_matrix_weight(tname, t):
            a = a.astype(np.float16)
        a = np.ascontiguousarray(a)
        if a.ndim == 0:
            a = a.reshape(1)
        w.add_tensor(tname, a)
        n_bytes += a.nbytes
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if not quiet:
        print(f"wrote {out_path}: {len(sd)} tensors, {n_bytes / 1e6:.2f} MB of weights ({dtype}), "
              f"{len(meta)} vocos.* keys")
    return out_path


def main():
    ap = argparse.ArgumentParser(description=__doc__, epilog="metadata written:" + METADATA,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+",
                    help="CHECKPOINT_DIR OUT.gguf, or OUT.gguf with --config/--model")
    ap.add_argument("--config", help="config.yaml (default: CHECKPOINT_DIR/config.yaml)")
    ap.add_argument("--model", help="pytorch_model.bin (default: CHECKPOINT_DIR/pytorch_model.bin)")
    ap.add_argument("--dtype", choices=("f32", "f16"), default="f32",
                    help="storage of linear/conv weights (norms, biases stay f32)")
    ap.add_argument("--name", help="general.name (default: the checkpoint folder's name)")
    args = ap.parse_args()
    if args.config and args.model and len(args.paths) == 1:
        config, model, out = args.config, args.model, args.paths[0]
    elif len(args.paths) == 2:
        src, out = args.paths
        config = args.config or os.path.join(src, "config.yaml")
        model = args.model or os.path.join(src, "pytorch_model.bin")
    else:
        ap.error("give CHECKPOINT_DIR OUT.gguf, or --config and --model with OUT.gguf")
    for p in (config, model):
        if not os.path.isfile(p):
            sys.exit(f"not found: {p}")
    convert(config, model, out, args.dtype, args.name)


if __name__ == "__main__":
    main()
