"""Golden fixtures for the transformer layers (sdk/src/nn/attn.h): a pre-norm layer
(LayerNorm or RMSNorm → multi-head self-attention with a fused QKV projection → optional
LayerScale → residual; norm → FFN → optional LayerScale → residual) in several
configurations: biases on/off, full / causal / local-window masks, RoPE interleaved (Mimi's
apply_rope) / half-split (HF Llama's rotate_half) / none, LayerScale on/off, GELU (erf,
tanh) / ReLU / SiLU, position offsets.

The reference math is written here in torch float32: attention through
F.scaled_dot_product_attention with a boolean mask (True = may attend), checked against an
explicit max-subtracted softmax and, for the unmasked and causal cases without RoPE, against
nn.MultiheadAttention holding the same weights. RoPE angles and their sines are computed in
float64 and rounded to float32, as the SDK does; the two RoPE conventions are checked to be
the same rotation up to a permutation of channels, and rotated dot products to depend only on
the position difference.

Writes tests/data/attn/layer.gguf: one set of weights in PyTorch layout shared by all cases
("w.*": norm1/norm2 weight and bias, qkv [3d][d] and bias, out, ls1, ls2, ff1, ff2), the input
"x" [T][d] (time-major), and per case "<case>.y" with the configuration as metadata
"<case>.<key>"; a case without biases, affine or LayerScale simply does not use those
tensors. Two cases also keep intermediates: "<case>.h1" (norm1 output), "<case>.attn"
(attention sublayer output, before LayerScale), "<case>.h2" (norm2 input after the first
residual, normalised) and "<case>.ffn" (FFN sublayer output). "rope.*" holds RoPE alone:
"rope.x" [T][H·D] and its rotations.

Usage: python tools/golden/attn.py
"""

import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Fixture  # noqa: E402

D_MODEL, HEADS, T, FFN = 64, 4, 23, 128
HEAD_DIM = D_MODEL // HEADS

# name: norm, affine, bias, causal, window, rope, theta, layerscale, act, pos0
CASES = {
    "full_plain": ("layer", True, True, 0, 0, "none", 10000.0, False, "gelu_erf", 0),
    "full_half_ls": ("layer", True, True, 0, 0, "half", 10000.0, True, "gelu_erf", 0),
    "causal_inter": ("layer", True, False, 1, 0, "interleaved", 10000.0, True, "gelu_erf", 0),
    "local_inter": ("layer", True, False, 1, 5, "interleaved", 10000.0, True, "gelu_tanh", 7),
    "local_sym_relu": ("layer", True, True, 0, 4, "none", 10000.0, False, "relu", 0),
    "causal_plain_bias": ("layer", True, True, 1, 0, "none", 10000.0, False, "gelu_erf", 0),
    "rms_half_silu": ("rms", True, False, 1, 0, "half", 10000.0, False, "silu", 3),
    "local_half_relu": ("layer", True, True, 1, 8, "half", 500000.0, True, "relu", 0),
    "noaffine_inter": ("layer", False, True, 0, 0, "interleaved", 10000.0, False, "gelu_tanh",
                       0),
}
INTERMEDIATES = ("full_half_ls", "local_inter")
EPS = {"layer": 1e-5, "rms": 1e-6}


def rnd(g, *shape, lo=-1.0, hi=1.0):
    return torch.rand(*shape, generator=g, dtype=torch.float64).float() * (hi - lo) + lo


def rope_tables(n, dim, pos0, theta):
    """cos, sin [n][dim/2] of angle (pos0 + t)·θ^(−2i/dim), computed in float64."""
    i = torch.arange(dim // 2, dtype=torch.float64)
    freq = torch.exp(-math.log(theta) * (2.0 * i / dim))
    pos = torch.arange(n, dtype=torch.float64) + pos0
    ang = pos[:, None] * freq[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def rope_interleaved(x, cos, sin):
    """Mimi / Kyutai apply_rope: pairs (2i, 2i+1). x [..., T, D], cos/sin [T, D/2]."""
    xr = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
    x0, x1 = xr[..., 0], xr[..., 1]
    out = torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)
    return out.reshape(x.shape)


def rope_half(x, cos, sin):
    """HF Llama: x·cos + rotate_half(x)·sin with cos, sin repeated over both halves."""
    h = x.shape[-1] // 2
    c, s = torch.cat([cos, cos], -1), torch.cat([sin, sin], -1)
    rot = torch.cat([-x[..., h:], x[..., :h]], -1)
    return x * c + rot * s


def apply_rope(kind, x, pos0, theta):
    if kind == "none":
        return x
    cos, sin = rope_tables(x.shape[-2], x.shape[-1], pos0, theta)
    return rope_interleaved(x, cos, sin) if kind == "interleaved" else rope_half(x, cos, sin)


def allowed_mask(n, causal, window):
    """[query t][key s] True where t may attend s."""
    t = torch.arange(n)[:, None]
    s = torch.arange(n)[None, :]
    ok = torch.ones(n, n, dtype=torch.bool)
    if causal:
        ok &= s <= t
    if window:
        ok &= (t - s) < window
        if not causal:
            ok &= (s - t) < window
    return ok


def norm(kind, x, w, b, eps):
    if kind == "rms":
        return F.rms_norm(x, (x.shape[-1],), w, eps=eps)
    return F.layer_norm(x, (x.shape[-1],), w, b, eps=eps)


ACTS = {
    "gelu_erf": lambda v: F.gelu(v),
    "gelu_tanh": lambda v: F.gelu(v, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
}


def self_attention(h, P, bias, causal, window, rope, theta, pos0):
    d, H, D = D_MODEL, HEADS, HEAD_DIM
    qkv = F.linear(h, P["qkv_w"], P["qkv_b"] if bias else None)
    q, k, v = (u.reshape(h.shape[0], H, D).transpose(0, 1) for u in qkv.split(d, dim=-1))
    q, k = apply_rope(rope, q, pos0, theta), apply_rope(rope, k, pos0, theta)
    ok = allowed_mask(h.shape[0], causal, window)
    o = F.scaled_dot_product_attention(q[None], k[None], v[None], attn_mask=ok)[0]
    # the same with an explicit max-subtracted softmax
    s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
    s = s.masked_fill(~ok, float("-inf"))
    p = torch.exp(s - s.amax(-1, keepdim=True))
    o2 = (p / p.sum(-1, keepdim=True)) @ v
    assert torch.allclose(o, o2, atol=1e-6), (o - o2).abs().max()
    o = o.transpose(0, 1).reshape(h.shape[0], d)
    a = F.linear(o, P["out_w"], P["out_b"] if bias else None)
    if rope == "none" and bias and not window:
        # nn.MultiheadAttention with the same weights (its bool mask is True = may NOT attend)
        mha = torch.nn.MultiheadAttention(d, H, bias=True, batch_first=True)
        mha.in_proj_weight.copy_(P["qkv_w"])
        mha.in_proj_bias.copy_(P["qkv_b"])
        mha.out_proj.weight.copy_(P["out_w"])
        mha.out_proj.bias.copy_(P["out_b"])
        mha.eval()
        ref, _ = mha(h[None], h[None], h[None], attn_mask=~ok, need_weights=False)
        assert torch.allclose(a, ref[0], atol=2e-6), (a - ref[0]).abs().max()
    return a


def layer(x, P, case):
    nk, affine, bias, causal, window, rope, theta, ls, act, pos0 = case
    eps = EPS[nk]
    n1w, n1b = (P["n1_w"], P["n1_b"]) if affine else (None, None)
    n2w, n2b = (P["n2_w"], P["n2_b"]) if affine else (None, None)
    if nk == "rms":
        n1b = n2b = None
    h1 = norm(nk, x, n1w, n1b, eps)
    a = self_attention(h1, P, bias, causal, window, rope, theta, pos0)
    x1 = x + (P["ls1"] * a if ls else a)
    h2 = norm(nk, x1, n2w, n2b, eps)
    f = F.linear(ACTS[act](F.linear(h2, P["ff1_w"], P["ff1_b"] if bias else None)), P["ff2_w"],
                 P["ff2_b"] if bias else None)
    y = x1 + (P["ls2"] * f if ls else f)
    return y, {"h1": h1, "attn": a, "h2": h2, "ffn": f}


def check_rope(g):
    """Self-checks of the two conventions (raise on failure)."""
    x = rnd(g, HEADS, T, HEAD_DIM).double()
    cos, sin = rope_tables(T, HEAD_DIM, 5, 10000.0)
    cos, sin = cos.double(), sin.double()
    h = HEAD_DIM // 2
    # half-split layout → interleaved layout: channel i → 2i, i + h → 2i + 1
    perm = torch.stack([torch.arange(h), torch.arange(h) + h], -1).reshape(-1)
    a = rope_half(x, cos, sin)[..., perm]
    b = rope_interleaved(x[..., perm], cos, sin)
    assert torch.allclose(a, b, atol=1e-12)
    # relative positions: <R(p)q, R(p')k> depends on p − p' only
    q, k = x[:, :1].expand(HEADS, T, HEAD_DIM), x[:, 1:2].expand(HEADS, T, HEAD_DIM)
    for fn in (rope_interleaved, rope_half):
        qr, kr = fn(q, cos, sin), fn(k, cos, sin)
        s = (qr[:, 3:] * kr[:, :-3]).sum(-1)
        assert torch.allclose(s, s[:, :1].expand_as(s), atol=1e-10)


def main():
    torch.set_grad_enabled(False)
    g = torch.Generator().manual_seed(20250611)
    d = D_MODEL
    P = {
        "n1_w": rnd(g, d, lo=0.5, hi=1.5), "n1_b": rnd(g, d, lo=-0.2, hi=0.2),
        "qkv_w": rnd(g, 3 * d, d, lo=-0.25, hi=0.25), "qkv_b": rnd(g, 3 * d, lo=-0.2, hi=0.2),
        "out_w": rnd(g, d, d, lo=-0.2, hi=0.2), "out_b": rnd(g, d, lo=-0.2, hi=0.2),
        "ls1": rnd(g, d, lo=0.1, hi=1.0),
        "n2_w": rnd(g, d, lo=0.5, hi=1.5), "n2_b": rnd(g, d, lo=-0.2, hi=0.2),
        "ff1_w": rnd(g, FFN, d, lo=-0.25, hi=0.25), "ff1_b": rnd(g, FFN, lo=-0.2, hi=0.2),
        "ff2_w": rnd(g, d, FFN, lo=-0.15, hi=0.15), "ff2_b": rnd(g, d, lo=-0.2, hi=0.2),
        "ls2": rnd(g, d, lo=0.1, hi=1.0),
    }
    x = rnd(g, T, d, lo=-1.5, hi=1.5)
    check_rope(g)

    fx = Fixture(os.path.join("attn", "layer.gguf"))
    fx.set("sotto.golden.layout", "time-major [T][C]; weights in PyTorch layout")
    fx.set("dim", d)
    fx.set("n_heads", HEADS)
    fx.set("ffn_dim", FFN)
    for name, arr in P.items():
        fx.add(f"w.{name}", arr.numpy())
    fx.add("x", x.numpy())
    for name, case in CASES.items():
        nk, affine, bias, causal, window, rope, theta, ls, act, pos0 = case
        y, mid = layer(x, P, case)
        fx.add(f"{name}.y", y.numpy())
        if name in INTERMEDIATES:
            for key, v in mid.items():
                fx.add(f"{name}.{key}", v.numpy())
        meta = {"norm": nk, "affine": affine, "bias": bias, "causal": causal, "window": window,
                "rope": rope, "rope_theta": theta, "layerscale": ls, "act": act, "pos0": pos0,
                "eps": EPS[nk]}
        for key, v in meta.items():
            fx.set(f"{name}.{key}", v)
        print(f"{name}: max|y| {y.abs().max():.3f}")

    # RoPE alone, both conventions, with an offset
    xr = rnd(g, T, HEADS * HEAD_DIM, lo=-2.0, hi=2.0)
    fx.add("rope.x", xr.numpy())
    for kind, pos0, theta in (("interleaved", 11, 10000.0), ("half", 4096, 500000.0)):
        heads = xr.reshape(T, HEADS, HEAD_DIM).transpose(0, 1)
        out = apply_rope(kind, heads, pos0, theta).transpose(0, 1).reshape(T, -1)
        fx.add(f"rope.{kind}", out.numpy())
        fx.set(f"rope.{kind}.pos0", pos0)
        fx.set(f"rope.{kind}.theta", theta)
    fx.write()


if __name__ == "__main__":
    main()
