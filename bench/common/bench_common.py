"""What the PyTorch sides of bench/vocos and bench/vocos_gpu share: the feature generator of
benchutil.c, the nearest-rank percentile of the C benches, and the window arithmetic of naive
exact streaming over a Vocos "center" head (R frames of receptive field per side)."""

import math

import numpy as np


def make_features(T, dim):
    """bench_make_features (benchutil.c): a 32-bit LCG, 24 high bits mapped to [-8, 0),
    [T][dim]."""
    n = T * dim
    out = np.empty(n, dtype=np.float32)
    s = 12345
    for i in range(n):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = np.float32(-8.0) + np.float32(8.0) * np.float32(s >> 8) / np.float32(16777216.0)
    return out.reshape(T, dim)


def percentile(sorted_v, q):
    """Nearest-rank percentile, as bench_percentile (benchutil.c) computes it."""
    if not sorted_v:
        return 0.0
    k = min(len(sorted_v), max(1, math.ceil(q / 100.0 * len(sorted_v))))
    return sorted_v[k - 1]


def final_samples(n, T, R, hop, n_fft):
    """Output samples no future frame can change once n of T frames are known."""
    if n >= T:
        return hop * (T - 1)
    return max(0, (n - R) * hop - n_fft // 2)


def stream_window(s0, s1, n, R, hop, n_fft):
    """Frames [a, b] whose offline decode gives samples [s0, s1) exactly (from the first n
    frames): the frames overlapping them, plus R of context per side."""
    half = n_fft // 2
    f_lo = max(0, math.ceil((s0 - half + 1) / hop))
    f_hi = min(n - 1, (s1 - 1 + half) // hop)
    return max(0, f_lo - R), min(n - 1, f_hi + R)
