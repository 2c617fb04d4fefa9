"""Golden fixtures for the decode-side parts of FlexiCodec (codecs/flexicodec): the small
random-weight config of tools/golden/flexicodec_make_checkpoint.py, converted with
tools/convert/flexicodec.py, and what the official flexicodec 0.1.2 modules compute from
random codes.

Writes, under tests/data/flexicodec/:
- `small.gguf` (f32) and `small-f16.gguf` (linear/conv weights f16): the converted model;
- `small_golden.gguf`, all sequences time-major [T][C], codes int32:
    `fsq_index` [G]                 random FSQ indices (G = 12 groups)
    `fsq_code` [G][5]               FSQ.indices_to_codes(project_out=False): normalised code
    `fsq_out` [G][convnext_dim]     FSQWrapper.from_codes: after project_out
    `semantic` [G][latent]          FlexiCodec.get_semantic_feature: ConvNeXt decoder output
    `rvq_codes` [G][n_codebooks]    random RVQ codes
    `rvq` [G][latent]               ResidualVectorQuantize.from_codes with every stage
    `rvq2` [G][latent]              the same with the first 2 stages only
    `token_lengths` [G]             random group lengths in 1..8
    `semantic_expanded`, `acoustic_expanded` [T][latent]
                                    FlexiCodec._deaggregate_features_from_token_lengths
                                    (T = sum of the lengths)
    `latent` [T][latent]            their sum: the bottleneck transformer's input
    `e2e_wave` [N]                  FlexiCodec.decode_from_codes with the bottleneck transformer
                                    replaced by the identity (everything else official)
    `dac_in` [T2][latent]           a known latent (random normal, T2 = 10 frames)
    `dac_wave` [N2]                 Decoder.forward on dac_in (N2 = 1280·T2 − 16 for the
                                    released strides)

Usage: python tools/golden/flexicodec.py [--keep DIR]  (--keep leaves the checkpoint in DIR)
"""

import argparse
import os
import sys
import tempfile

import numpy as np
import torch
from torch import nn

# This script (and tools/convert/flexicodec.py) shares its name with the official
# `flexicodec` package: take our folder off the front of sys.path so `import flexicodec` finds
# the package, put it back at the end for the sibling modules, and load the converter by path.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
import flexicodec  # noqa: E402,F401  (the official package, before our folder is on the path)

sys.path.append(HERE)
from common import DATA, Fixture  # noqa: E402
import flexicodec_make_checkpoint as mk  # noqa: E402


def load_converter():
    """tools/convert/flexicodec.py as a module (imported by path: its name is the package's)."""
    import importlib.util

    path = os.path.join(HERE, "..", "convert", "flexicodec.py")
    spec = importlib.util.spec_from_file_location("sotto_convert_flexicodec", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


convert_flexicodec = load_converter()

SEED = 20251001
GROUPS = 12
DAC_FRAMES = 10
MODULES = ("torch", "flexicodec", "safetensors", "gguf")


def tm(t):
    """(1, C, T) -> [T][C] numpy."""
    return t[0].transpose(0, 1).contiguous().numpy()


def fixtures(model, fx):
    g = torch.Generator().manual_seed(SEED + 1)
    fsq = model.semantic_vq.fsq
    n_fsq = int(fsq.codebook_size)
    n_q = model.dac.quantizer.n_codebooks
    cb = model.dac.quantizer.codebook_size
    sem_codes = torch.randint(0, n_fsq, (1, 1, GROUPS), generator=g)
    ac_codes = torch.randint(0, cb, (1, n_q, GROUPS), generator=g)
    lengths = torch.randint(1, 9, (1, GROUPS), generator=g)
    # Make sure the extremes of the index range and of the lengths are covered.
    sem_codes[0, 0, 0], sem_codes[0, 0, 1] = 0, n_fsq - 1
    lengths[0, 0], lengths[0, 1] = 1, 8
    ac_codes[0, 0, 0], ac_codes[0, n_q - 1, 1] = 0, cb - 1
    with torch.no_grad():
        code = fsq.indices_to_codes(sem_codes[0, 0], project_out=False)  # [G, 5]
        fsq_out = model.semantic_vq.from_codes(sem_codes)[0]             # (1, C, G)
        semantic = model.get_semantic_feature(sem_codes)                 # (1, latent, G)
        rvq = model.dac.quantizer.from_codes(ac_codes)[0]
        rvq2 = model.dac.quantizer.from_codes(ac_codes[:, :2])[0]
        sem_x = model._deaggregate_features_from_token_lengths(semantic, lengths)
        ac_x = model._deaggregate_features_from_token_lengths(rvq, lengths)
        saved = model.bottleneck_transformer
        model.bottleneck_transformer = nn.Identity()
        try:
            e2e = model.decode_from_codes(sem_codes, ac_codes, lengths)
        finally:
            model.bottleneck_transformer = saved

        lat = model.dac.latent_dim
        z = torch.randn(1, lat, DAC_FRAMES, generator=g)
        wave = model.dac.decoder(z)

    fx.add("fsq_index", sem_codes[0, 0].numpy(), np.int32)
    fx.add("fsq_code", code.numpy())
    fx.add("fsq_out", tm(fsq_out))
    fx.add("semantic", tm(semantic))
    fx.add("rvq_codes", ac_codes[0].transpose(0, 1).contiguous().numpy(), np.int32)
    fx.add("rvq", tm(rvq))
    fx.add("rvq2", tm(rvq2))
    fx.add("token_lengths", lengths[0].numpy(), np.int32)
    fx.add("semantic_expanded", tm(sem_x))
    fx.add("acoustic_expanded", tm(ac_x))
    fx.add("latent", tm(sem_x + ac_x))
    fx.add("e2e_wave", e2e[0, 0].numpy())
    fx.add("dac_in", tm(z))
    fx.add("dac_wave", wave[0, 0].numpy())
    fx.set("flexicodec.groups", GROUPS)
    fx.set("flexicodec.frames", int(lengths.sum()))
    fx.set("flexicodec.dac_frames", DAC_FRAMES)
    print(f"  e2e: {GROUPS} groups, {int(lengths.sum())} frames -> {e2e.shape[-1]} samples; "
          f"dac: {DAC_FRAMES} frames -> {wave.shape[-1]} samples, "
          f"peak |wave| {float(wave.abs().max()):.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", help="also leave the PyTorch checkpoint in this folder")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out_dir = os.path.join(DATA, "flexicodec")
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ck_dir = args.keep or tmp
        name = "small"
        mk.make(name, ck_dir, SEED)
        ckpt = os.path.join(ck_dir, f"{name}.safetensors")
        cfg = os.path.join(ck_dir, f"{name}_config.yaml")
        convert_flexicodec.convert(ckpt, cfg, os.path.join(out_dir, "small.gguf"), "f32",
                                   name="flexicodec-small")
        convert_flexicodec.convert(ckpt, cfg, os.path.join(out_dir, "small-f16.gguf"), "f16",
                                   name="flexicodec-small-f16")
        model = mk.load_official(ck_dir, name)
        fx = Fixture("flexicodec/small_golden.gguf", MODULES)
        fixtures(model, fx)
        fx.write()


if __name__ == "__main__":
    main()
