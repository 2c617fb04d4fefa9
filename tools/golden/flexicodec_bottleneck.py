"""Golden fixtures for FlexiCodec's transformers (codecs/flexicodec/bottleneck.h): the
32-layer "bottleneck transformer" of the decoder and the 6-layer transformer inside each
query-token aggregator of the encoder, both the package's own Mimi-derived
`ProjectedTransformer` (flexicodec/model_blocks/mimi/transformer.py, flexicodec 0.1.2), built
small with the released settings otherwise.

How the modules are built
- Bottleneck: `ProjectedTransformer(**kwargs)` with exactly the keyword arguments
  `FlexiCodec.__init__` passes (checked here against the package source, see
  check_flexicodec_kwargs), the released values for everything but the size (non-causal,
  context 16, LayerScale, LayerNorm, RoPE max_period 10000, no gating, conv layout, input and
  output dimension = d_model so no projections) and d_model 64, 4 heads, FFN 128, 3 layers.
- Aggregator: `QueryTokenAggregator(dim=24, in_out_dim=24, num_heads=2, num_layers=2,
  dim_feedforward=48, causal=False, context_frames=16)` as FlexiCodec builds its two
  aggregators (all dims equal, as in the release where they are 512); the full aggregator
  forward runs on random features and groups, and its transformer's input (the interleaved
  frame/query sequence) and output are captured with a forward hook.
- Every parameter (norm weights and biases, LayerScale vectors included) is re-drawn from a
  seeded generator, so a test cannot pass by skipping one.

Checks made here, on the official modules:
- the state_dict has exactly the keys the SDK loads, per layer: self_attn.in_proj_weight
  [3d][d], self_attn.out_proj.weight [d][d], norm1/norm2 .weight/.bias [d], linear1.weight
  [ffn][d], linear2.weight [d][ffn], layer_scale_1/2.scale [d]; no biases, no projections,
  no final norm;
- forward returns one tensor [B][C][T] (not a list);
- non-causal: `context` has no effect (the output with context None is identical);
- the transformer equals an explicit re-implementation (pre-norm LayerNorm eps 1e-5, fused
  QKV, interleaved-pair RoPE from position 0, full softmax attention scaled 1/sqrt(D),
  exact GELU, LayerScale), which pins down the conventions the C code assumes.

Writes tests/data/flexicodec_bottleneck/
- weights.gguf: general.architecture "flexicodec-test"; the tensors under their official
  state_dict names (bottleneck_transformer.transformer.layers.{i}.*,
  semantic_aggregator.transformer.transformer.layers.{i}.*); metadata
  flexicodec.transformer.* with the names and types tools/convert/flexicodec.py writes, and
  the same for the aggregator under flexicodec.aggregator.* (test only).
- io.gguf (time-major [T][C]):
    bottleneck.x [T][64]                  the latent, T = 37
    bottleneck.y [T][64]                  ProjectedTransformer output (non-causal, released)
    bottleneck_causal.y [T][64]           the same weights with causal=True, context 16
    aggregator.x [T+G][24]                interleaved frames and queries (transformer input)
    aggregator.y [T+G][24]                the aggregator's transformer output
    aggregator.query_pos [G] (i32)        where the queries sit in the interleaved sequence
    aggregator.out [G][24]                QueryTokenAggregator.forward output

Usage: python tools/golden/flexicodec_bottleneck.py
"""

import ast
import importlib.util
import math
import os
import sys

os.environ.setdefault("NO_TORCH_COMPILE", "1")

if __name__ == "__main__":
    # Run as a script, this folder is first on sys.path and its flexicodec.py (another fixture
    # writer) would shadow the official package: take the folder off the path for the import.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from flexicodec.model_blocks.mimi.transformer import (  # noqa: E402
    ProjectedTransformer, QueryTokenAggregator)

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
from common import Fixture  # noqa: E402

import gguf  # noqa: E402

SEED = 20251129
T = 37                      # bottleneck frames
D_MODEL, HEADS, FFN, LAYERS = 64, 4, 128, 3
CONTEXT = 16                # transformer_context_frames of the released config
AGG_D, AGG_HEADS, AGG_FFN, AGG_LAYERS = 24, 2, 48, 2
AGG_GROUP_LENGTHS = [3, 1, 4, 2, 5, 1, 2, 3, 1, 4, 2]  # frames per group: T_agg = 28, G = 11
NORM_EPS = 1e-5
MAX_PERIOD = 10000.0
BT_PREFIX = "bottleneck_transformer."
AGG_PREFIX = "semantic_aggregator.transformer."
LAYER_KEYS = {
    "self_attn.in_proj_weight": lambda d, f: (3 * d, d),
    "self_attn.out_proj.weight": lambda d, f: (d, d),
    "norm1.weight": lambda d, f: (d,), "norm1.bias": lambda d, f: (d,),
    "norm2.weight": lambda d, f: (d,), "norm2.bias": lambda d, f: (d,),
    "linear1.weight": lambda d, f: (f, d), "linear2.weight": lambda d, f: (d, f),
    "layer_scale_1.scale": lambda d, f: (d,), "layer_scale_2.scale": lambda d, f: (d,),
}
OUT = "flexicodec_bottleneck"


def bottleneck_kwargs(d_model, heads, ffn, layers, causal, context, latent_dim):
    """The keyword arguments FlexiCodec.__init__ gives ProjectedTransformer (flexicodec 0.1.2,
    modeling_flexicodec.py), with the size passed in."""
    return {
        'd_model': d_model,
        'num_heads': heads,
        'num_layers': layers,
        'causal': causal,
        'layer_scale': 0.01,
        'context': context,
        'conv_layout': True,
        'max_period': 10000,
        'gating': 'none',
        'norm': 'layer_norm',
        'positional_embedding': 'rope',
        'dim_feedforward': ffn,
        'input_dimension': latent_dim,
        'output_dimensions': [latent_dim],
    }


def check_flexicodec_kwargs():
    """The transformer_kwargs dict literal in FlexiCodec.__init__ must have the keys used here
    and the same constant values (the rest are the constructor's size arguments)."""
    spec = importlib.util.find_spec("flexicodec")
    path = os.path.join(spec.submodule_search_locations[0], "modeling_flexicodec.py")
    with open(path) as f:
        tree = ast.parse(f.read())
    found = None
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "transformer_kwargs"
                and isinstance(node.value, ast.Dict)):
            found = node.value
            break
    assert found is not None, "transformer_kwargs not found in modeling_flexicodec.py"
    ours = bottleneck_kwargs(1, 1, 1, 1, False, 1, 1)
    keys = [ast.literal_eval(k) for k in found.keys]
    assert sorted(keys) == sorted(ours), (keys, list(ours))
    for k, v in zip(keys, found.values):
        if isinstance(v, ast.Constant):
            assert ours[k] == v.value, (k, ours[k], v.value)
        elif isinstance(v, ast.List):
            pass  # output_dimensions: [latent_dim]
        else:
            assert isinstance(v, ast.Name), (k, ast.dump(v))


def randomise(module, g):
    """Re-draws every parameter: norms around 1, biases and LayerScale of either sign."""
    for name, p in module.named_parameters():
        if name.endswith(("norm1.weight", "norm2.weight")):
            v = torch.rand(p.shape, generator=g) + 0.5
        elif name.endswith(("norm1.bias", "norm2.bias")):
            v = (torch.rand(p.shape, generator=g) - 0.5) * 0.4
        elif name.endswith("scale"):
            v = (torch.rand(p.shape, generator=g) * 0.8 + 0.2) * \
                torch.where(torch.rand(p.shape, generator=g) < 0.2, -1.0, 1.0)
        elif p.dim() == 2:
            v = torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1])
        else:
            v = torch.randn(p.shape, generator=g)
        p.copy_(v)


def check_keys(sd, prefix, d, ffn, layers):
    want = {}
    for i in range(layers):
        for k, shape in LAYER_KEYS.items():
            want[f"{prefix}transformer.layers.{i}.{k}"] = shape(d, ffn)
    got = {k: tuple(v.shape) for k, v in sd.items() if k.startswith(prefix)}
    assert got == want, (sorted(set(got) ^ set(want)), got)


def reference(x_td, sd, prefix, d, heads, layers, causal, context):
    """Explicit float64 re-implementation of the layers on x [T][d] (time-major)."""
    D = d // heads
    x = x_td.double()
    Tn = x.shape[0]
    pos = torch.arange(Tn, dtype=torch.float64)
    freqs = torch.exp(torch.arange(D // 2, dtype=torch.float64) * (-math.log(MAX_PERIOD) * 2 / D))
    ang = pos[:, None] * freqs[None, :]
    cos, sin = torch.cos(ang), torch.sin(ang)

    def rope(h):  # [H][T][D], pairs (2i, 2i+1)
        r, i = h[..., 0::2], h[..., 1::2]
        out = torch.empty_like(h)
        out[..., 0::2] = r * cos - i * sin
        out[..., 1::2] = r * sin + i * cos
        return out

    mask = torch.ones(Tn, Tn, dtype=torch.bool)
    if causal:
        delta = pos[:, None] - pos[None, :]
        mask = (delta >= 0) & (delta < context)
    for i in range(layers):
        p = {k: sd[f"{prefix}transformer.layers.{i}.{k}"].double() for k in LAYER_KEYS}
        h = F.layer_norm(x, (d,), p["norm1.weight"], p["norm1.bias"], NORM_EPS)
        qkv = h @ p["self_attn.in_proj_weight"].T
        q, k, v = (qkv[:, j * d:(j + 1) * d].reshape(Tn, heads, D).transpose(0, 1)
                   for j in range(3))
        q, k = rope(q), rope(k)
        s = (q @ k.transpose(1, 2)) / math.sqrt(D)
        s = s.masked_fill(~mask, float("-inf"))
        a = torch.softmax(s, dim=-1) @ v
        a = a.transpose(0, 1).reshape(Tn, d) @ p["self_attn.out_proj.weight"].T
        x = x + p["layer_scale_1.scale"] * a
        h = F.layer_norm(x, (d,), p["norm2.weight"], p["norm2.bias"], NORM_EPS)
        f = F.gelu(h @ p["linear1.weight"].T) @ p["linear2.weight"].T
        x = x + p["layer_scale_2.scale"] * f
    return x


def run(module, x_td):
    """Module on time-major x [T][C] through the conv layout [1][C][T]; returns [T][C]."""
    y = module(x_td.T.unsqueeze(0).contiguous())
    assert isinstance(y, torch.Tensor), f"forward returned {type(y)}"
    assert tuple(y.shape) == (1, x_td.shape[1], x_td.shape[0]), y.shape
    return y[0].T.contiguous()


def add_meta(w, key_prefix, d, heads, ffn, layers, causal, context):
    """The flexicodec.transformer.* keys with the types tools/convert/flexicodec.py uses."""
    w.add_uint32(key_prefix + "num_layers", layers)
    w.add_uint32(key_prefix + "dim", d)
    w.add_uint32(key_prefix + "num_heads", heads)
    w.add_uint32(key_prefix + "dim_feedforward", ffn)
    w.add_bool(key_prefix + "causal", causal)
    w.add_uint32(key_prefix + "context_frames", context)
    w.add_float32(key_prefix + "norm_eps", NORM_EPS)
    w.add_float32(key_prefix + "layer_scale_init", 0.01)
    w.add_float32(key_prefix + "rope_max_period", MAX_PERIOD)
    w.add_bool(key_prefix + "has_input_proj", False)


def main():
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    check_flexicodec_kwargs()
    g = torch.Generator().manual_seed(SEED)

    # ---- bottleneck transformer ------------------------------------------------------------
    bt = ProjectedTransformer(**bottleneck_kwargs(D_MODEL, HEADS, FFN, LAYERS, False, CONTEXT,
                                                  D_MODEL)).eval()
    assert bt.input_proj is None and isinstance(bt.output_projs[0], torch.nn.Identity)
    randomise(bt, g)
    sd_bt = {BT_PREFIX + k: v.clone() for k, v in bt.state_dict().items()}
    check_keys(sd_bt, BT_PREFIX, D_MODEL, FFN, LAYERS)
    x = torch.randn(T, D_MODEL, generator=g)
    y = run(bt, x)

    nocontext = ProjectedTransformer(**bottleneck_kwargs(D_MODEL, HEADS, FFN, LAYERS, False,
                                                         None, D_MODEL)).eval()
    nocontext.load_state_dict(bt.state_dict())
    assert torch.equal(run(nocontext, x), y), "non-causal output depends on context"
    causal = ProjectedTransformer(**bottleneck_kwargs(D_MODEL, HEADS, FFN, LAYERS, True, CONTEXT,
                                                      D_MODEL)).eval()
    causal.load_state_dict(bt.state_dict())
    y_causal = run(causal, x)
    assert (y_causal - y).abs().max() > 1e-2, "causal mask made no difference"

    for name, yy, c in (("bottleneck", y, False), ("bottleneck_causal", y_causal, True)):
        ref = reference(x, sd_bt, BT_PREFIX, D_MODEL, HEADS, LAYERS, c, CONTEXT)
        err = (ref - yy.double()).abs().max().item()
        print(f"{name}: max|y| {yy.abs().max():.3f}, torch vs float64 reference {err:.2e}")
        assert err < 1e-4, err

    # ---- query-token aggregator ------------------------------------------------------------
    agg = QueryTokenAggregator(dim=AGG_D, in_out_dim=AGG_D, num_heads=AGG_HEADS,
                               num_layers=AGG_LAYERS, dim_feedforward=AGG_FFN, causal=False,
                               context_frames=CONTEXT, use_mean_pooling_init=True).eval()
    assert agg.transformer.input_proj is None
    randomise(agg, g)
    sd_agg = {"semantic_aggregator." + k: v.clone() for k, v in agg.state_dict().items()}
    assert set(sd_agg) - {k for k in sd_agg if k.startswith(AGG_PREFIX)} == \
        {"semantic_aggregator.query_embedding"}, sorted(sd_agg)
    check_keys(sd_agg, AGG_PREFIX, AGG_D, AGG_FFN, AGG_LAYERS)
    Ta, G = sum(AGG_GROUP_LENGTHS), len(AGG_GROUP_LENGTHS)
    feats = torch.randn(1, AGG_D, Ta, generator=g)
    align = torch.zeros(1, G, Ta)
    t0 = 0
    for gi, n in enumerate(AGG_GROUP_LENGTHS):
        align[0, gi, t0:t0 + n] = 1
        t0 += n
    seen = {}

    def hook(mod, args, out):
        seen["x"], seen["y"] = args[0][0].T.contiguous(), out[0].T.contiguous()

    hd = agg.transformer.register_forward_hook(hook)
    agg_out = agg(feats, align, torch.tensor([G]))[0].T.contiguous()  # [G][d]
    hd.remove()
    ends = np.cumsum(AGG_GROUP_LENGTHS)
    query_pos = (ends - 1 + np.arange(G) + 1).astype(np.int32)  # after each group's last frame
    assert torch.equal(agg_out, seen["y"][torch.from_numpy(query_pos).long()])
    ref = reference(seen["x"], sd_agg, AGG_PREFIX, AGG_D, AGG_HEADS, AGG_LAYERS, False, CONTEXT)
    err = (ref - seen["y"].double()).abs().max().item()
    print(f"aggregator: T+G {Ta + G}, max|y| {seen['y'].abs().max():.3f}, "
          f"torch vs float64 reference {err:.2e}")
    assert err < 1e-4, err

    # ---- files -----------------------------------------------------------------------------
    fx = Fixture(os.path.join(OUT, "io.gguf"), modules=("torch", "flexicodec", "gguf"))
    fx.set("sotto.golden.layout", "time-major [T][C]")
    fx.add("bottleneck.x", x.numpy())
    fx.add("bottleneck.y", y.numpy())
    fx.add("bottleneck_causal.y", y_causal.numpy())
    fx.add("aggregator.x", seen["x"].numpy())
    fx.add("aggregator.y", seen["y"].numpy())
    fx.add("aggregator.query_pos", query_pos, dtype=np.int32)
    fx.add("aggregator.out", agg_out.numpy())
    fx.write()

    path = os.path.join(os.path.dirname(fx.path), "weights.gguf")
    w = gguf.GGUFWriter(path, "flexicodec-test")
    w.add_name("flexicodec transformers, random weights (tools/golden/flexicodec_bottleneck.py)")
    add_meta(w, "flexicodec.transformer.", D_MODEL, HEADS, FFN, LAYERS, False, CONTEXT)
    add_meta(w, "flexicodec.aggregator.", AGG_D, AGG_HEADS, AGG_FFN, AGG_LAYERS, False, CONTEXT)
    for name, t in sorted({**sd_bt, **sd_agg}.items()):
        if name.startswith((BT_PREFIX, AGG_PREFIX)):
            w.add_tensor(name, np.ascontiguousarray(t.numpy().astype(np.float32)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote tests/data/{OUT}/weights.gguf ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
