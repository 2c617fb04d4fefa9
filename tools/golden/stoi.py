"""Golden fixture for metrics_stoi (apps/sotto/metrics.c): pystoi 0.4.1's classic STOI
(stoi(x, y, fs, extended=False)) on pairs of clean and degraded speech built from
samples/speech/*.flac.

Writes tests/data/stoi/pairs.gguf. Signals are stored as float32 at the rate STOI is asked to
work at, and pystoi is run on exactly those float32 values (promoted to float64), so the C
code and the reference see identical input. Tensors: clean_16k, clean_48k, clean_10k (the
references), deg0..degN-1 (the degraded signals), rate[N] (Hz of each pair; the reference is
clean_<rate/1000>k) and stoi[N] (pystoi's scores).

Usage: python tools/golden/stoi.py
"""

import os
import sys

import numpy as np
import pystoi
import soundfile as sf
from scipy.signal import butter, resample_poly, sosfilt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, Fixture  # noqa: E402

SPEECH = os.path.join(REPO, "samples", "speech")
SRC_A = "cmuarctic_aew_a0001_16k.flac"
SRC_B = "cmuarctic_axb_a0004_16k.flac"


def excerpt(name, start_s, dur_s):
    x, sr = sf.read(os.path.join(SPEECH, name), dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    assert sr == 16000, sr
    return x[int(start_s * sr):int((start_s + dur_s) * sr)]


def with_noise(x, snr_db, seed):
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(len(x))
    n *= np.sqrt(np.sum(x ** 2) / np.sum(n ** 2) / 10 ** (snr_db / 10))
    return x + n


def main():
    clean16 = excerpt(SRC_A, 0.5, 1.0).astype(np.float32)
    c = clean16.astype(np.float64)
    shifted = np.concatenate([np.zeros(3), c[:-3]])
    lowpass = sosfilt(butter(6, 1000, fs=16000, output="sos"), c)
    b = excerpt(SRC_B, 0.6, 0.6)
    clean48 = resample_poly(b, 3, 1).astype(np.float32)
    clean10 = resample_poly(excerpt(SRC_B, 0.4, 1.0), 5, 8).astype(np.float32)
    pairs = [  # (name, rate, degraded)
        ("itself", 16000, c),
        ("noise_0db", 16000, with_noise(c, 0.0, 1)),
        ("noise_10db", 16000, with_noise(c, 10.0, 2)),
        ("lowpass_1khz", 16000, lowpass),
        ("shift_3", 16000, shifted),
        ("noise_5db_48k", 48000, with_noise(clean48.astype(np.float64), 5.0, 3)),
        ("noise_5db_10k", 10000, with_noise(clean10.astype(np.float64), 5.0, 4)),
    ]
    refs = {16000: clean16, 48000: clean48, 10000: clean10}
    fx = Fixture("stoi/pairs.gguf", modules=("pystoi", "scipy"))
    fx.set("sotto.golden.source_a", SRC_A)
    fx.set("sotto.golden.source_b", SRC_B)
    fx.add("clean_16k", clean16)
    fx.add("clean_48k", clean48)
    fx.add("clean_10k", clean10)
    rates, scores = [], []
    for i, (name, rate, deg) in enumerate(pairs):
        deg = deg.astype(np.float32)
        ref = refs[rate]
        d = pystoi.stoi(ref.astype(np.float64), deg.astype(np.float64), rate, extended=False)
        print(f"pair {i} {name:14s} {rate:5d} Hz  stoi {d:.6f}")
        fx.add(f"deg{i}", deg)
        fx.set(f"sotto.golden.pair{i}", name)
        rates.append(rate)
        scores.append(d)
    fx.add("rate", np.array(rates, dtype=np.float32))
    fx.add("stoi", np.array(scores, dtype=np.float32))
    fx.write()


if __name__ == "__main__":
    main()
