"""Golden fixtures for the layer library (sdk/src/nn/ops.h): torch.nn.functional linear,
conv1d (stride, dilation, groups, depthwise, zero/reflect/replicate padding), conv_transpose1d
(stride, dilation, groups, padding, output_padding), conv2d, layer_norm, rms_norm, group_norm,
eval batch_norm, GELU (erf and tanh), SiLU, ELU, LeakyReLU, tanh, softmax, embedding, and the
DAC Snake formula, on small seeded random tensors.

Writes tests/data/ops/{linear,conv1d,convtr1d,conv2d,norm,act,embedding}.gguf. Layout: torch
works on [C][T]; every sequence here is transposed to the SDK's time-major [T][C] before it is
stored (metadata `sotto.golden.layout` = "time-major [T][C]"), so the C tests compare buffers
directly. 2-D images stay [C][H][W] (torch NCHW with N = 1), as sotto_conv2d takes them.
Weights keep their PyTorch shapes, as converted model files do. Each case is a tensor prefix
"<case>." with its hyperparameters as metadata "<case>.<key>".

Usage: python tools/golden/ops.py
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Fixture  # noqa: E402

LAYOUT = "time-major [T][C] (torch [C][T] transposed); images [C][H][W]"


def new(rel):
    fx = Fixture(os.path.join("ops", rel))
    fx.set("sotto.golden.layout", LAYOUT)
    return fx


def rnd(g, *shape, lo=-1.0, hi=1.0):
    return torch.rand(*shape, generator=g, dtype=torch.float64).float() * (hi - lo) + lo


def tm(x_ct):
    """torch [C][T] (or [1][C][T]) → numpy time-major [T][C]."""
    if x_ct.dim() == 3:
        x_ct = x_ct[0]
    return x_ct.transpose(0, 1).contiguous().numpy()


def linear(g):
    fx = new("linear.gguf")
    shapes = {"small": (3, 33, 47), "gemv": (1, 64, 100), "big": (40, 72, 56)}
    for name, (m, k, n) in shapes.items():
        x, w, b = rnd(g, m, k), rnd(g, n, k, lo=-0.3, hi=0.3), rnd(g, n)
        fx.add(f"{name}.x", x.numpy())
        fx.add(f"{name}.w", w.numpy())
        fx.add(f"{name}.b", b.numpy())
        fx.add(f"{name}.y", F.linear(x, w, b).numpy())
    # f16-stored weights: the tensor is f16 in the file; y_exact uses exactly those weights,
    # y_f32 the unrounded ones (to state the accuracy cost of keeping f16)
    x, w, b = rnd(g, 4, 96), rnd(g, 80, 96, lo=-0.3, hi=0.3), rnd(g, 80)
    w16 = w.half()
    fx.add("half.x", x.numpy())
    fx.add("half.w", w16.numpy(), dtype=np.float16)
    fx.add("half.b", b.numpy())
    fx.add("half.y_exact", F.linear(x, w16.float(), b).numpy())
    fx.add("half.y_f32", F.linear(x, w, b).numpy())
    fx.write()


def conv1d(g):
    fx = new("conv1d.gguf")
    # name: cin, cout, k, stride, dilation, groups, T, pad_left, pad_right, mode
    cases = {
        "basic": (5, 7, 3, 1, 1, 1, 20, 1, 1, "zeros"),
        "strided_dilated_reflect": (6, 4, 5, 2, 2, 1, 31, 4, 4, "reflect"),
        "groups_replicate": (6, 9, 3, 1, 1, 3, 17, 1, 1, "replicate"),
        "depthwise_k7": (16, 16, 7, 1, 1, 16, 25, 3, 3, "zeros"),
        "blas_k7": (24, 32, 7, 1, 1, 1, 40, 3, 3, "zeros"),
        "dac_down": (8, 16, 8, 4, 1, 1, 42, 2, 2, "zeros"),
        "causal_left": (4, 6, 4, 1, 3, 1, 15, 9, 0, "zeros"),
    }
    for name, (cin, cout, k, s, d, gr, T, pl, pr, mode) in cases.items():
        x = rnd(g, 1, cin, T)
        w = rnd(g, cout, cin // gr, k, lo=-0.5, hi=0.5)
        b = rnd(g, cout)
        xp = F.pad(x, (pl, pr), mode="constant" if mode == "zeros" else mode)
        y = F.conv1d(xp, w, b, stride=s, dilation=d, groups=gr)
        fx.add(f"{name}.x", tm(x))
        fx.add(f"{name}.w", w.numpy())
        fx.add(f"{name}.b", b.numpy())
        fx.add(f"{name}.y", tm(y))
        for key, v in (("stride", s), ("dilation", d), ("groups", gr), ("pad_left", pl),
                       ("pad_right", pr)):
            fx.set(f"{name}.{key}", v)
        fx.set(f"{name}.pad_mode", mode)
    fx.write()


def convtr1d(g):
    fx = new("convtr1d.gguf")
    # name: cin, cout, k, stride, dilation, groups, T, padding, output_padding
    cases = {
        "basic": (6, 4, 4, 2, 1, 1, 9, 1, 0),
        "groups_outpad": (8, 6, 3, 3, 2, 2, 7, 0, 1),
        "dac_up": (16, 8, 16, 8, 1, 1, 10, 4, 0),
        "blas": (12, 10, 6, 3, 1, 1, 40, 2, 1),
    }
    for name, (cin, cout, k, s, d, gr, T, p, op) in cases.items():
        x = rnd(g, 1, cin, T)
        w = rnd(g, cin, cout // gr, k, lo=-0.5, hi=0.5)
        b = rnd(g, cout)
        y = F.conv_transpose1d(x, w, b, stride=s, padding=p, output_padding=op, groups=gr,
                               dilation=d)
        fx.add(f"{name}.x", tm(x))
        fx.add(f"{name}.w", w.numpy())
        fx.add(f"{name}.b", b.numpy())
        fx.add(f"{name}.y", tm(y))
        for key, v in (("stride", s), ("dilation", d), ("groups", gr), ("padding", p),
                       ("output_padding", op)):
            fx.set(f"{name}.{key}", v)
    fx.write()


def conv2d(g):
    fx = new("conv2d.gguf")
    # name: cin, cout, kh, kw, (sh, sw), (ph, pw), (dh, dw), groups, H, W
    cases = {
        "front_3x3": (1, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1, 12, 10),
        "strided_grouped": (4, 6, 3, 5, (2, 1), (1, 2), (1, 2), 2, 11, 13),
    }
    for name, (cin, cout, kh, kw, st, pd, dl, gr, H, W) in cases.items():
        x = rnd(g, 1, cin, H, W)
        w = rnd(g, cout, cin // gr, kh, kw, lo=-0.5, hi=0.5)
        b = rnd(g, cout)
        y = F.conv2d(x, w, b, stride=st, padding=pd, dilation=dl, groups=gr)
        fx.add(f"{name}.x", x[0].numpy())
        fx.add(f"{name}.w", w.numpy())
        fx.add(f"{name}.b", b.numpy())
        fx.add(f"{name}.y", y[0].numpy())
        for key, v in (("stride_h", st[0]), ("stride_w", st[1]), ("pad_h", pd[0]),
                       ("pad_w", pd[1]), ("dil_h", dl[0]), ("dil_w", dl[1]), ("groups", gr)):
            fx.set(f"{name}.{key}", v)
    fx.write()


def norms(g):
    fx = new("norm.gguf")
    T, C = 9, 37
    x = rnd(g, T, C, lo=-2.0, hi=3.0)
    w, b = rnd(g, C, lo=0.5, hi=1.5), rnd(g, C)
    fx.add("ln.x", x.numpy())
    fx.add("ln.w", w.numpy())
    fx.add("ln.b", b.numpy())
    fx.add("ln.y", F.layer_norm(x, (C,), w, b, eps=1e-6).numpy())
    fx.add("ln.y_plain", F.layer_norm(x, (C,), None, None, eps=1e-5).numpy())
    fx.add("rms.y", F.rms_norm(x, (C,), w, eps=1e-6).numpy())
    # group norm over a whole sequence: torch [1][C][T]
    Cg, G, Tg = 12, 3, 20
    xg = rnd(g, 1, Cg, Tg)
    wg, bg = rnd(g, Cg, lo=0.5, hi=1.5), rnd(g, Cg)
    fx.add("gn.x", tm(xg))
    fx.add("gn.w", wg.numpy())
    fx.add("gn.b", bg.numpy())
    fx.add("gn.y", tm(F.group_norm(xg, G, wg, bg, eps=1e-5)))
    fx.set("gn.groups", G)
    # eval batch norm on [1][C][T]
    mean, var = rnd(g, Cg), rnd(g, Cg, lo=0.2, hi=2.0)
    fx.add("bn.mean", mean.numpy())
    fx.add("bn.var", var.numpy())
    fx.add("bn.y", tm(F.batch_norm(xg, mean, var, wg, bg, training=False, eps=1e-5)))
    fx.write()


def acts(g):
    fx = new("act.gguf")
    special = torch.tensor([0.0, -0.0, 1e-7, -1e-7, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 6.0, -6.0,
                            10.0, -10.0, 20.0, -20.0])
    x = torch.cat([special, rnd(g, 985, lo=-8.0, hi=8.0)])  # 1001 values
    fx.add("x", x.numpy())
    fx.add("gelu_erf", F.gelu(x).numpy())
    fx.add("gelu_tanh", F.gelu(x, approximate="tanh").numpy())
    fx.add("silu", F.silu(x).numpy())
    fx.add("elu_1", F.elu(x, 1.0).numpy())
    fx.add("elu_07", F.elu(x, 0.7).numpy())
    fx.add("leaky_001", F.leaky_relu(x, 0.01).numpy())
    fx.add("leaky_02", F.leaky_relu(x, 0.2).numpy())
    fx.add("tanh", torch.tanh(x).numpy())
    # Snake1d as DAC writes it, on [1][C][T] with alpha [1][C][1]
    C, T = 12, 50
    xs = rnd(g, 1, C, T, lo=-4.0, hi=4.0)
    alpha = rnd(g, 1, C, 1, lo=0.05, hi=3.0)
    ys = xs + (alpha + 1e-9).reciprocal() * torch.sin(alpha * xs).pow(2)
    fx.add("snake.x", tm(xs))
    fx.add("snake.alpha", alpha.reshape(C).numpy())
    fx.add("snake.y", tm(ys))
    # softmax over rows, with a wide range so max-subtraction matters
    xsm = rnd(g, 7, 33, lo=-40.0, hi=40.0)
    xsm[0, 0] = 500.0
    fx.add("softmax.x", xsm.numpy())
    fx.add("softmax.y", F.softmax(xsm, dim=-1).numpy())
    fx.write()


def embedding(g):
    fx = new("embedding.gguf")
    table = rnd(g, 50, 8)
    ids = torch.tensor([0, 49, 3, 3, 17, 25, 1, 48, 9, 30], dtype=torch.int64)
    fx.add("table", table.numpy())
    fx.add("ids", ids.numpy().astype(np.int32), dtype=np.int32)
    fx.add("y", F.embedding(ids, table).numpy())
    fx.write()


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(20261122)
    for fn in (linear, conv1d, convtr1d, conv2d, norms, acts, embedding):
        fn(g)


if __name__ == "__main__":
    main()
