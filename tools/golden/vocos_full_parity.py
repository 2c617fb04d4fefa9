"""Full-size Vocos parity check (random weights): builds the released configurations
(vocos-mel-24khz, vocos-encodec-24khz) with tools/golden/vocos_make_checkpoint.py, converts
them with tools/convert/vocos.py, writes the official PyTorch reference for a speech excerpt
into a work folder (never committed: about 150 MB), and compares a waveform produced by the
C side against it.

`make` writes, per model, into WORK/<name>/:
  config.yaml, pytorch_model.bin   the random-weight checkpoint (official layout)
  model-f32.gguf, model-f16.gguf   converted models
  audio.f32        mel models: the input excerpt at 24 kHz (raw float32, mono)
  features.f32     the backbone input, time-major [T][C] raw float32: the official log-mel
                   for mel models, the summed codebook embeddings for EnCodec models
  codes.i32        EnCodec models: the random codes [n_q][T] (raw int32), bandwidth id in
                   info.txt
  ref.f32          the official `Vocos.decode` waveform (raw float32)
  info.txt         shapes, bandwidth id and the commands to run
`compare` reads a raw float32 file (or any file soundfile reads) and prints max-abs error,
NMSE and the verdict against the per-dtype budget.

Usage:
  python tools/golden/vocos_full_parity.py make WORK [--speech DIR] [--seconds S]
  python tools/golden/vocos_full_parity.py compare WORK NAME OUTPUT [--dtype f32|f16]
"""

import argparse
import os
import sys

import numpy as np
import soundfile as sf
import torch
import torchaudio

# This folder holds a vocos.py too: keep it off the front of sys.path while importing the
# official package, then append it for the sibling modules.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
import vocos  # noqa: E402,F401  (the official package)

sys.path.append(HERE)
from common import REPO  # noqa: E402
import vocos_make_checkpoint as mk  # noqa: E402

SPEECH = "libritts_5142_33396_000002_000004_24k.flac"
SEED = 20240611
# NMSE budget of the whole waveform, per weight dtype (f16 rounds every linear/conv weight).
NMSE_MAX = {"f32": 1e-8, "f16": 1e-4}


def load_speech(speech_dir, sr, seconds):
    x, file_sr = sf.read(os.path.join(speech_dir, SPEECH), dtype="float32", always_2d=True)
    x = torch.from_numpy(x[:, 0].copy())
    if file_sr != sr:
        x = torchaudio.functional.resample(x, file_sr, sr)
    return x[: int(seconds * sr)].contiguous()


def tm(t):
    return t[0].transpose(0, 1).contiguous().numpy().astype(np.float32)


def make(work, speech_dir, seconds):
    convert = mk.load_converter().convert
    for name in mk.FULL:
        d = mk.make(name, work, SEED)
        for dtype in ("f32", "f16"):
            convert(os.path.join(d, "config.yaml"), os.path.join(d, "pytorch_model.bin"),
                    os.path.join(d, f"model-{dtype}.gguf"), dtype, name)
        model = mk.load_official(d)
        cfg = mk.CONFIGS[name]
        info = [f"model {name} (random weights, seed {SEED})"]
        if cfg["feature_extractor"]["class_path"] == mk.FE_MEL:
            sr = cfg["feature_extractor"]["init_args"]["sample_rate"]
            x = load_speech(speech_dir, sr, seconds)
            with torch.no_grad():
                feats = model.feature_extractor(x[None])
            wave = model.decode(feats)[0]
            x.numpy().astype(np.float32).tofile(os.path.join(d, "audio.f32"))
            info.append(f"audio.f32: {x.numel()} samples at {sr} Hz from {SPEECH}")
            kwargs_note = ""
        else:
            sr = 24000
            bw_id = len(cfg["feature_extractor"]["init_args"]["bandwidths"]) - 1
            n_q = model.feature_extractor.num_q
            bins = model.feature_extractor.encodec.quantizer.bins
            frames = int(seconds * 75)
            g = torch.Generator().manual_seed(SEED + 1)
            codes = torch.randint(0, bins, (n_q, frames), generator=g)
            feats = model.codes_to_features(codes)
            wave = model.decode(feats, bandwidth_id=torch.tensor([bw_id]))[0]
            codes.numpy().astype(np.int32).tofile(os.path.join(d, "codes.i32"))
            info.append(f"codes.i32: int32 [{n_q}][{frames}], bandwidth_id {bw_id}")
            kwargs_note = f" (bandwidth_id {bw_id})"
        f = tm(feats)
        f.tofile(os.path.join(d, "features.f32"))
        wave.numpy().astype(np.float32).tofile(os.path.join(d, "ref.f32"))
        info.append(f"features.f32: float32 [{f.shape[0]}][{f.shape[1]}] time-major{kwargs_note}")
        info.append(f"ref.f32: float32 [{wave.numel()}] at {sr} Hz (official Vocos.decode)")
        info.append("check: vocode features.f32 with model-f32.gguf (and model-f16.gguf) "
                    "into a raw float32 file, then")
        rel = os.path.relpath(os.path.abspath(__file__), REPO)
        info.append(f"  python {rel} compare {work} {name} OUTPUT.f32 --dtype f32")
        with open(os.path.join(d, "info.txt"), "w") as fh:
            fh.write("\n".join(info) + "\n")
        print("\n".join(info))


def read_output(path):
    if path.endswith((".f32", ".raw", ".bin")):
        return np.fromfile(path, dtype=np.float32)
    y, _ = sf.read(path, dtype="float32", always_2d=True)
    return y[:, 0]


def compare(work, name, output, dtype):
    ref = np.fromfile(os.path.join(work, name, "ref.f32"), dtype=np.float32).astype(np.float64)
    out = read_output(output).astype(np.float64)
    if len(out) != len(ref):
        print(f"length: output {len(out)} vs reference {len(ref)} samples (comparing the overlap)")
    n = min(len(out), len(ref))
    d = out[:n] - ref[:n]
    max_abs = float(np.abs(d).max()) if n else float("inf")
    nmse = float((d ** 2).sum() / max((ref[:n] ** 2).sum(), 1e-30))
    ok = len(out) == len(ref) and nmse <= NMSE_MAX[dtype]
    print(f"{name} ({dtype}): {n} samples, max-abs {max_abs:.3e}, NMSE {nmse:.3e} "
          f"(budget {NMSE_MAX[dtype]:.0e}) -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("make", help="write checkpoints, converted models and references")
    a.add_argument("work")
    default_dir = (os.environ.get("SOTTO_SPEECH_DIR")
                   or os.path.join(REPO, "..", "shared", "data", "speech"))
    a.add_argument("--speech", default=default_dir, help="folder with the speech corpus")
    a.add_argument("--seconds", type=float, default=3.0)
    c = sub.add_parser("compare", help="compare a C output with the reference")
    c.add_argument("work")
    c.add_argument("name", choices=mk.FULL)
    c.add_argument("output", help="raw float32 (.f32/.raw/.bin) or an audio file")
    c.add_argument("--dtype", choices=sorted(NMSE_MAX), default="f32")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.cmd == "make":
        os.makedirs(args.work, exist_ok=True)
        make(args.work, args.speech, args.seconds)
        return 0
    return compare(args.work, args.name, args.output, args.dtype)


if __name__ == "__main__":
    sys.exit(main())
