"""Golden fixtures for the Vocos vocoder (vocoder/vocos): for each small random-weight config
of tools/golden/vocos_make_checkpoint.py, the converted model the C tests load and the
official PyTorch results on a short excerpt of real speech.

Writes, under tests/data/vocos/:
- `<name>.gguf`: the model, converted with tools/convert/vocos.py (f32), plus
  `mel-small-f16.gguf` (same weights, linear/conv weights in f16) for the f16 path;
- `<name>_golden.gguf`: the fixture. All sequences are time-major [T][C]:
    mel configs     `audio` [N] (the excerpt at the model rate), `mel` [T][n_mels]
                    (MelSpectrogramFeatures output, natural log),
    encodec configs `codes` int32 [n_q][T] (random), `features` [T][128] (summed codebook
                    embeddings, `Vocos.codes_to_features`), metadata `bandwidth_id`; a second
                    case at bandwidth id 0 as `bw0.codes`, `bw0.features`, `bw0.wave`,
    all configs     `embed` (embed conv output), `embed_norm` (after the first (Ada)LayerNorm),
                    `block.<i>` (after ConvNeXt block i), `final_norm` (backbone output),
                    `head_out` [T][n_fft + 2] (head linear: log-magnitude then phase), and
                    `wave` [N'] from the official `Vocos.decode`.

Usage: python tools/golden/vocos.py [--speech DIR] [--keep DIR]
(DIR defaults to $SOTTO_SPEECH_DIR, else ../shared/data/speech beside the repository;
--keep also leaves the PyTorch checkpoints in DIR).
"""

import argparse
import json
import os
import sys
import tempfile

import numpy as np
import soundfile as sf
import torch
import torchaudio

# This script (and tools/convert/vocos.py) shares its name with the official `vocos`
# package: take our folder off the front of sys.path so `import vocos` finds the package,
# put it back at the end for the sibling modules, and load the converter by path.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
import vocos  # noqa: E402,F401  (the official package, before our folder is on the path)

sys.path.append(HERE)
from common import DATA, REPO, Fixture  # noqa: E402
import vocos_make_checkpoint as mk  # noqa: E402

convert_vocos = mk.load_converter().convert

SPEECH = "librispeech_2412-153948-0000_16k.flac"
EXCERPT = (0.5, 1.0)  # start, duration in seconds
CODES_FRAMES = 75     # 1 s of EnCodec frames at 75 Hz
SEED = 20240611
MODULES = ("torch", "torchaudio", "vocos", "encodec", "gguf")


def load_excerpt(speech_dir, name, want_sr, start_s, dur_s):
    x, sr = sf.read(os.path.join(speech_dir, name), dtype="float32", always_2d=True)
    x = torch.from_numpy(x[:, 0].copy())
    if sr != want_sr:
        x = torchaudio.functional.resample(x, sr, want_sr)
    a = int(round(start_s * want_sr))
    return x[a : a + int(round(dur_s * want_sr))].contiguous()


def tm(t):
    """(1, C, T) -> [T][C] numpy."""
    return t[0].transpose(0, 1).contiguous().numpy()


def capture(model):
    """Forward hooks on the official modules; returns (dict of time-major arrays, remove)."""
    out, handles = {}, []
    bb = model.backbone

    def hook(name, channels_first):
        def fn(_mod, _inp, y):
            out[name] = tm(y) if channels_first else y[0].contiguous().numpy()
        return fn

    handles.append(bb.embed.register_forward_hook(hook("embed", True)))
    handles.append(bb.norm.register_forward_hook(hook("embed_norm", False)))
    for i, blk in enumerate(bb.convnext):
        handles.append(blk.register_forward_hook(hook(f"block.{i}", True)))
    handles.append(bb.final_layer_norm.register_forward_hook(hook("final_norm", False)))
    handles.append(model.head.out.register_forward_hook(hook("head_out", False)))
    return out, lambda: [h.remove() for h in handles]


def describe(fx, cfg, rel_model):
    fx.set("sotto.golden.model", rel_model)
    fx.set("sotto.golden.config", json.dumps(cfg))
    fx.set("sotto.golden.seed", SEED)


def mel_fixture(name, cfg, model, speech_dir):
    sr = cfg["feature_extractor"]["init_args"]["sample_rate"]
    x = load_excerpt(speech_dir, SPEECH, sr, *EXCERPT)
    fx = Fixture(f"vocos/{name}_golden.gguf", modules=MODULES)
    describe(fx, cfg, f"vocos/{name}.gguf")
    fx.set("sotto.golden.source", SPEECH)
    fx.set("sotto.golden.excerpt", f"{EXCERPT[0]} s + {EXCERPT[1]} s, at {sr} Hz")
    fx.set("sotto.golden.sample_rate", sr)
    with torch.no_grad():
        feats = model.feature_extractor(x[None])
    acts, remove = capture(model)
    wave = model.decode(feats)[0]
    remove()
    # Copy-synthesis through Vocos.forward must give the same samples.
    again = model(x[None])[0]
    if not torch.equal(wave, again):
        raise SystemExit(f"{name}: Vocos.forward differs from decode(feature_extractor(x))")
    fx.add("audio", x.numpy())
    fx.add("mel", tm(feats))
    for k, v in acts.items():
        fx.add(k, v)
    fx.add("wave", wave.numpy())
    fx.set("sotto.golden.frames", int(feats.shape[-1]))
    fx.set("sotto.golden.wave_samples", int(wave.shape[-1]))
    fx.write()


def encodec_fixture(name, cfg, model):
    fe = cfg["feature_extractor"]["init_args"]
    bins = model.feature_extractor.encodec.quantizer.bins
    n_q_total = model.feature_extractor.num_q
    per_bw = [mk_codebooks(model, bw) for bw in fe["bandwidths"]]
    g = torch.Generator().manual_seed(SEED + 1)
    fx = Fixture(f"vocos/{name}_golden.gguf", modules=MODULES)
    describe(fx, cfg, f"vocos/{name}.gguf")
    fx.set("sotto.golden.sample_rate", 24000)
    fx.set("sotto.golden.codebooks_total", n_q_total)

    def case(bw_id, prefix, with_acts):
        n_q = per_bw[bw_id]
        codes = torch.randint(0, bins, (n_q, CODES_FRAMES), generator=g)
        feats = model.codes_to_features(codes)
        if with_acts:
            acts, remove = capture(model)
        wave = model.decode(feats, bandwidth_id=torch.tensor([bw_id]))[0]
        if with_acts:
            remove()
            for k, v in acts.items():
                fx.add(k, v)
        fx.add(prefix + "codes", codes.numpy().astype(np.int32), dtype=np.int32)
        fx.add(prefix + "features", tm(feats))
        fx.add(prefix + "wave", wave.numpy())
        fx.set(f"sotto.golden.{prefix}bandwidth_id", bw_id)
        fx.set(f"sotto.golden.{prefix}n_q", n_q)
        fx.set(f"sotto.golden.{prefix}wave_samples", int(wave.shape[-1]))

    last = len(per_bw) - 1
    case(last, "", True)
    case(0, "bw0.", False)
    fx.set("sotto.golden.frames", CODES_FRAMES)
    fx.write()


def mk_codebooks(model, bandwidth_kbps):
    q = model.feature_extractor.encodec.quantizer
    return q.get_num_quantizers_for_bandwidth(model.feature_extractor.encodec.frame_rate,
                                              bandwidth_kbps)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    default_dir = (os.environ.get("SOTTO_SPEECH_DIR")
                   or os.path.join(REPO, "..", "shared", "data", "speech"))
    ap.add_argument("--speech", default=default_dir, help="folder with the speech corpus")
    ap.add_argument("--keep", help="also keep the PyTorch checkpoints in this folder")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out_dir = os.path.join(DATA, "vocos")
    os.makedirs(out_dir, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        ckpt_root = args.keep or tmp
        for name in mk.SMALL:
            cfg = mk.CONFIGS[name]
            d = mk.make(name, ckpt_root, SEED)
            convert_vocos(os.path.join(d, "config.yaml"), os.path.join(d, "pytorch_model.bin"),
                          os.path.join(out_dir, f"{name}.gguf"), "f32", name)
            if name == "mel-small":
                convert_vocos(os.path.join(d, "config.yaml"), os.path.join(d, "pytorch_model.bin"),
                              os.path.join(out_dir, f"{name}-f16.gguf"), "f16", name)
            model = mk.load_official(d)
            if cfg["feature_extractor"]["class_path"] == mk.FE_MEL:
                mel_fixture(name, cfg, model, args.speech)
            else:
                encodec_fixture(name, cfg, model)

    total = 0
    for f in sorted(os.listdir(out_dir)):
        size = os.path.getsize(os.path.join(out_dir, f))
        total += size
        print(f"  {f:32s} {size:9d} bytes")
    print(f"tests/data/vocos: {total / 1e6:.2f} MB")
    if total > 5e6:
        raise SystemExit("tests/data/vocos is over its 5 MB budget")


if __name__ == "__main__":
    main()
