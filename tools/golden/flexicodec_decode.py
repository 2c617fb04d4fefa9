"""End-to-end golden fixtures for the FlexiCodec decoder API (sotto_codec.h): a small
random-weight model WITH its bottleneck transformer (3 layers), converted with
tools/convert/flexicodec.py, and the waveforms the official flexicodec 0.1.2
`FlexiCodec.decode_from_codes` computes from random codes.

The model is the `small` config of tools/golden/flexicodec_make_checkpoint.py narrowed so that
model and fixture stay near 1.5 MB together: latent / transformer width 32 (3 layers, 2 heads,
FFN 64), ConvNeXt 48 wide (2 layers, intermediate 64), DAC decoder_dim 64 with the released
rates [2, 8, 5, 4, 4], 4 RVQ stages of 64 entries (code dim 8), FSQ levels [8, 8, 8, 8, 8].
Every parameter is random (flexicodec_make_checkpoint.randomize, DAC gains calibrated).

Writes, under tests/data/flexicodec/:
- `decode-small.gguf` (f32): the converted model (general.architecture "flexicodec");
- `decode-small_golden.gguf`, codes int32, waveforms float32:
    `fsq` [G]              FSQ indices (G = 14; indices 0 and 32767 included)
    `rvq` [G][n_codebooks] RVQ codes (all stored stages; codes 0 and 63 included)
    `lengths` [G]          group lengths in 1..8 (1 and 8 included)
    `wave3` [N]            decode_from_codes(fsq, rvq[:, :3], lengths): 3 RVQ stages
    `wave0` [N]            decode_from_codes(fsq, None, lengths): no acoustic codes
    `stages_mixed` [G]     a stage count per group (0..4)
    `wave_mixed` [N]       the same chain with group g's acoustic latent decoded from its
                           first stages_mixed[g] stages (official modules: semantic_vq,
                           convnext_decoder, quantizer.from_codes per group,
                           _deaggregate_features_from_token_lengths, bottleneck_transformer,
                           dac.decoder, in decode_from_codes' order)
  N = 1280·T − 16 with T = Σ lengths.

With --full DIR (never under the repository: about 600 MB) it instead builds the full released
configuration (flexicodec_make_checkpoint.py `12hz_v1`, random weights), converts it and writes
DIR/full.gguf and DIR/full_golden.gguf (same tensors, 24 stages, wave3 → wave8 with 8 stages);
tests/golden/test_flexicodec_decode.c checks them when SOTTO_FLEXICODEC_FULL=DIR is set.

Usage: python tools/golden/flexicodec_decode.py [--keep DIR] [--full DIR]
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

# Same name clash as tools/golden/flexicodec.py: the official package is `flexicodec`.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
import flexicodec  # noqa: E402,F401  (the official package, before our folder is on the path)

sys.path.append(HERE)
from common import DATA, REPO, Fixture  # noqa: E402
import flexicodec_make_checkpoint as mk  # noqa: E402

SEED = 20251117
GROUPS = 14
MODULES = ("torch", "flexicodec", "safetensors", "gguf")

# The `small` config narrowed (see the docstring); registered with the checkpoint maker.
DECODE_SMALL = dict(mk.SMALL, latent_dim=32, decoder_dim=64, convnext_dim=48,
                    transformer_num_layers=3, transformer_dim=32, transformer_num_heads=2,
                    transformer_dim_feedforward=64)
mk.CONFIGS["decode_small"] = DECODE_SMALL
mk.CONVNEXT_INTERMEDIATE["decode_small"] = 64


def load_converter():
    """tools/convert/flexicodec.py as a module (imported by path: its name is the package's)."""
    import importlib.util

    path = os.path.join(HERE, "..", "convert", "flexicodec.py")
    spec = importlib.util.spec_from_file_location("sotto_convert_flexicodec", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def mixed_decode(model, sem, ac, lengths, stages):
    """decode_from_codes with a stage count per group: group g's acoustic latent is
    quantizer.from_codes of its first stages[g] codes (zero for 0 stages)."""
    semantic = model.convnext_decoder(model.semantic_vq.from_codes(sem)[0])
    lat = model.dac.latent_dim
    cols = []
    for g in range(sem.shape[-1]):
        n = int(stages[g])
        if n == 0:
            cols.append(torch.zeros(1, lat, 1))
        else:
            cols.append(model.dac.quantizer.from_codes(ac[:, :n, g:g + 1])[0])
    acoustic = torch.cat(cols, dim=-1)
    x = (model._deaggregate_features_from_token_lengths(acoustic, lengths)
         + model._deaggregate_features_from_token_lengths(semantic, lengths))
    return model.dac.decoder(model.bottleneck_transformer(x))


def fixtures(model, fx, hi_stages):
    g = torch.Generator().manual_seed(SEED + 1)
    n_fsq = int(model.semantic_vq.fsq.codebook_size)
    n_q = model.dac.quantizer.n_codebooks
    cb = model.dac.quantizer.codebook_size
    sem = torch.randint(0, n_fsq, (1, 1, GROUPS), generator=g)
    ac = torch.randint(0, cb, (1, n_q, GROUPS), generator=g)
    lengths = torch.randint(1, 9, (1, GROUPS), generator=g)
    sem[0, 0, 0], sem[0, 0, 1] = 0, n_fsq - 1
    ac[0, 0, 0], ac[0, 1, 1] = 0, cb - 1
    lengths[0, 0], lengths[0, 1] = 1, 8
    stages = torch.randint(0, n_q + 1, (GROUPS,), generator=g)
    stages[0], stages[1], stages[2] = 0, n_q, hi_stages
    with torch.no_grad():
        t0 = time.time()
        wave_hi = model.decode_from_codes(sem, ac[:, :hi_stages], lengths)
        t_hi = time.time() - t0
        wave0 = model.decode_from_codes(sem, None, lengths)
        wave_mixed = mixed_decode(model, sem, ac, lengths, stages)
        # The per-group path with a constant stage count is decode_from_codes itself (up to
        # float rounding: the RVQ GEMMs run per group here).
        check = mixed_decode(model, sem, ac, lengths, [hi_stages] * GROUPS)
        dev = float((check - wave_hi).abs().max())
        print(f"  per-group path vs decode_from_codes: max-abs {dev:.2g}")
        assert dev < 1e-4, dev
    T = int(lengths.sum())
    assert wave_hi.shape[-1] == 1280 * T - 16, wave_hi.shape
    fx.add("fsq", sem[0, 0].numpy(), np.int32)
    fx.add("rvq", ac[0].transpose(0, 1).contiguous().numpy(), np.int32)
    fx.add("lengths", lengths[0].numpy(), np.int32)
    fx.add(f"wave{hi_stages}", wave_hi[0, 0].numpy())
    fx.add("wave0", wave0[0, 0].numpy())
    fx.add("stages_mixed", stages.numpy(), np.int32)
    fx.add("wave_mixed", wave_mixed[0, 0].numpy())
    fx.set("flexicodec.groups", GROUPS)
    fx.set("flexicodec.frames", T)
    fx.set("flexicodec.hi_stages", hi_stages)
    print(f"  {GROUPS} groups, {T} frames -> {wave_hi.shape[-1]} samples; peak |wave| "
          f"{float(wave_hi.abs().max()):.3f} / {float(wave0.abs().max()):.3f} / "
          f"{float(wave_mixed.abs().max()):.3f}; torch decode {t_hi:.2f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", help="also leave the PyTorch checkpoint in this folder")
    ap.add_argument("--full", help="build the full released config into this folder instead "
                                   "(outside the repository)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    conv = load_converter()
    if args.full:
        out_dir = os.path.abspath(args.full)
        if out_dir == REPO or out_dir.startswith(REPO + os.sep):
            raise SystemExit("--full writes about 600 MB: choose a folder outside the repository")
        os.makedirs(out_dir, exist_ok=True)
        name, model_path, hi = "12hz_v1", os.path.join(out_dir, "full.gguf"), 8
        golden = Fixture("unused", MODULES)
        golden.path = os.path.join(out_dir, "full_golden.gguf")
    else:
        out_dir = os.path.join(DATA, "flexicodec")
        name, model_path, hi = "decode_small", os.path.join(out_dir, "decode-small.gguf"), 3
        golden = Fixture("flexicodec/decode-small_golden.gguf", MODULES)
    with tempfile.TemporaryDirectory() as tmp:
        ck_dir = args.keep or (out_dir if args.full else tmp)
        mk.make(name, ck_dir, SEED)
        ckpt = os.path.join(ck_dir, f"{name}.safetensors")
        cfg = os.path.join(ck_dir, f"{name}_config.yaml")
        conv.convert(ckpt, cfg, model_path, "f32",
                     name="flexicodec-full-random" if args.full else "flexicodec-decode-small")
        model = mk.load_official(ck_dir, name)
        fixtures(model, golden, hi)
        golden.write()


if __name__ == "__main__":
    main()
