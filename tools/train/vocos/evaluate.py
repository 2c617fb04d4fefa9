"""Objective evaluation of a Vocos-mel vocoder on the shared speech clips: analysis-synthesis
of every clip at the model's sample rate, then per clip

- mel L1: mean over frames and bands of |log-mel(original) - log-mel(resynthesised)|, with
  the model's own front end (its MelSpectrogramFeatures: natural log, floor 1e-7), computed
  over the common length of the two signals;
- STOI (pystoi, classic STOI, not extended), original as the reference;

printed as a table with the mean. The resynthesis comes either from the PyTorch model
(--checkpoint, official layout) or from a folder of already-vocoded files (--vocoded, e.g. the
C SDK's output), named after the source clip: `<clip stem>.wav` (or .flac).

By default only clips whose MANIFEST.tsv rate equals the model rate are used; --resample
takes every clip, resampled to the model rate.

Usage (from the repository root):
  python tools/train/vocos/evaluate.py --checkpoint out/vocos-16k-mini/checkpoint \
      --speech ../shared/data/speech [--write out/resynth]
  python tools/train/vocos/evaluate.py --vocoded out/c-vocoded --config CONFIG.yaml \
      --speech ../shared/data/speech
"""

import argparse
import csv
import os
import sys

import numpy as np
import soundfile as sf
import torch
import torchaudio
import yaml
from pystoi import stoi
from vocos.pretrained import Vocos, instantiate_class

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DEFAULT_CONFIG = os.path.join(HERE, "vocos-16k-mini.yaml")


def model_section(cfg):
    """The official-layout part of a checkpoint config.yaml or of the recipe yaml."""
    return cfg["model"] if "model" in cfg else cfg


def clips(speech_dir, rate, resample):
    """(file name, manifest rate) of the clips to evaluate, in manifest order."""
    manifest = os.path.join(speech_dir, "MANIFEST.tsv")
    out = []
    if os.path.exists(manifest):
        with open(manifest, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                sr = int(row["sample_rate"])
                if sr == rate or resample:
                    out.append((row["file"], sr))
    else:
        for name in sorted(os.listdir(speech_dir)):
            if name.endswith((".flac", ".wav")):
                out.append((name, sf.info(os.path.join(speech_dir, name)).samplerate))
        out = [(n, sr) for n, sr in out if sr == rate or resample]
    return out


def load(path, rate):
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = torch.from_numpy(x.mean(axis=1).copy())
    if sr != rate:
        x = torchaudio.functional.resample(x, sr, rate)
    return x


def mel_l1(front_end, a, b):
    n = min(a.numel(), b.numel())
    with torch.no_grad():
        return float((front_end(a[None, :n]) - front_end(b[None, :n])).abs().mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="folder with config.yaml + pytorch_model.bin")
    src.add_argument("--vocoded", help="folder of already-vocoded files named <clip stem>.wav")
    ap.add_argument("--config", help="model config for --vocoded (default: the recipe's model)")
    default_speech = os.path.join(REPO, "..", "shared", "data", "speech")
    ap.add_argument("--speech", default=default_speech,
                    help="folder of reference clips + MANIFEST.tsv")
    ap.add_argument("--resample", action="store_true",
                    help="also use clips at other rates, resampled")
    ap.add_argument("--write", help="write the PyTorch resynthesis here as <clip stem>.wav")
    ap.add_argument("--csv", help="also write the table as CSV")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.checkpoint:
        cfg_path = os.path.join(args.checkpoint, "config.yaml")
        model = Vocos.from_hparams(cfg_path)
        sd = torch.load(os.path.join(args.checkpoint, "pytorch_model.bin"), map_location="cpu")
        model.load_state_dict(sd)
        model.eval()
        front_end = model.feature_extractor
    else:
        cfg_path = args.config or DEFAULT_CONFIG
        model = None
    with open(cfg_path) as f:
        cfg = model_section(yaml.safe_load(f))
    if not cfg["feature_extractor"]["class_path"].endswith("MelSpectrogramFeatures"):
        raise SystemExit("evaluate.py handles mel-feature models only")
    if model is None:
        front_end = instantiate_class((), cfg["feature_extractor"])
    rate = cfg["feature_extractor"]["init_args"]["sample_rate"]
    if args.write:
        os.makedirs(args.write, exist_ok=True)

    todo = clips(args.speech, rate, args.resample)
    if not todo:
        raise SystemExit(f"no clips at {rate} Hz in {args.speech} (try --resample)")
    rows = []
    print(f"{'clip':48s} {'sec':>6s} {'mel L1':>8s} {'STOI':>7s}")
    for name, _ in todo:
        stem = os.path.splitext(name)[0]
        x = load(os.path.join(args.speech, name), rate)
        if model is not None:
            with torch.no_grad():
                y = model(x[None])[0]
            if args.write:
                sf.write(os.path.join(args.write, stem + ".wav"), y.numpy(), rate, subtype="FLOAT")
        else:
            path = next((os.path.join(args.vocoded, stem + e) for e in (".wav", ".flac")
                         if os.path.exists(os.path.join(args.vocoded, stem + e))), None)
            if path is None:
                print(f"{name:48s} missing in {args.vocoded}", file=sys.stderr)
                continue
            y = load(path, rate)
        n = min(x.numel(), y.numel())
        m = mel_l1(front_end, x, y)
        s = float(stoi(x[:n].numpy().astype(np.float64), y[:n].numpy().astype(np.float64), rate,
                       extended=False))
        rows.append((name, n / rate, m, s))
        print(f"{name:48s} {n / rate:6.2f} {m:8.4f} {s:7.4f}")
    if not rows:
        raise SystemExit("nothing evaluated")
    mean_m = float(np.mean([r[2] for r in rows]))
    mean_s = float(np.mean([r[3] for r in rows]))
    print(f"{'mean (' + str(len(rows)) + ' clips)':48s} {'':6s} {mean_m:8.4f} {mean_s:7.4f}")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["clip", "seconds", "mel_l1", "stoi"])
            w.writerows(rows)
            w.writerow(["mean", "", f"{mean_m:.6f}", f"{mean_s:.6f}"])


if __name__ == "__main__":
    main()
