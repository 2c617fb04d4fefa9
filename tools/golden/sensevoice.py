"""Golden fixtures for the SenseVoice-Small encoder as FlexiCodec uses it
(encoders/sensevoice/): the official `SenseVoiceEncoderSmall` and `SenseVoiceSmall.prepend_inputs`
of flexicodec 0.1.2 (flexicodec/customized_sensevoice/model.py) and FunASR's `WavFrontend`
(Kaldi fbank, LFR, CMVN), built SMALL with random weights.

How it is built
- Encoder: input 560 (80 mels × LFR m 7), output 64, 4 heads, FFN 128, 3 blocks (encoders0.0
  + encoders.0/1), 1 tp block (so that taking the output before the tp stack is checked),
  FSMN kernel 11, sanm_shfit 0. Every parameter (norms, biases, the query-embedding table,
  the FSMN taps) is re-drawn from a seeded generator.
- Input: 1.5 s of a 16 kHz speech clip, Kaldi fbank by FunASR's WavFrontend with dither 0
  (no LFR, no CMVN) → the official apply_lfr (m 7, n 6) → CMVN from an am.mvn file written
  here with non-trivial values (shift ≈ −mean, scale ≈ 1/std of this clip, jittered), parsed
  both by FunASR's load_cmvn and tools/convert/sensevoice.py's (checked equal).
- Queries: SenseVoiceSmall.prepend_inputs with its defaults (language auto → row 0, event
  row 1, emotion row 2, text norm woitn → row 15), then `encoder(..., extract_hidden=True)`;
  the features FlexiCodec takes are `hidden_out[:, 4:]` (modeling_flexicodec.py).

Checks made here on the official code
- WavFrontend(lfr 7/6, cmvn file) equals fbank → apply_lfr → apply_cmvn;
- apply_lfr equals "prepend 3 copies of frame 0, window i = rows 6i … 6i+6 of that, rows past
  the end clamped to the last frame", T_lfr = ceil(T/6), for every T in 1 … 400;
- an explicit re-implementation of the encoder (the conventions the C code assumes: scale by
  sqrt(output_size), sinusoid positions from 1 with depth = 560, SAN-M with FSMN memory on v,
  no residual on block 0's attention) matches the official output.

Writes tests/data/sensevoice/
- small.gguf: written by tools/convert/sensevoice.py's write_gguf (the converter itself),
  tensors under the prefix "semantic_model." (FlexiCodec's names); the 2-D weights as f16
  (every parameter is drawn f16-representable, so this loses nothing), the rest f32.
- small_golden.gguf (time-major [T][C]):
    wave [N]            the 16 kHz clip (float, ±1), N = 24000
    fbank [T][80]       Kaldi fbank, T = 148
    lfr_cmvn [T_lfr][560]  LFR + CMVN (the encoder input), T_lfr = 25
    lfr.<n> [ceil(n/6)][560]  raw LFR (no CMVN) of the first n fbank frames, several n
    enc_in [T_lfr+4][560]  after prepend_inputs (before the sqrt(d) scale)
    enc_out [T_lfr][64]    hidden_out[:, 4:] (what FlexiCodec takes)

Usage: python tools/golden/sensevoice.py
"""

import importlib.util
import math
import os
import sys
import tempfile

if __name__ == "__main__":
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from flexicodec.customized_sensevoice.model import (  # noqa: E402
    SenseVoiceEncoderSmall, SenseVoiceSmall)
from funasr.frontends.wav_frontend import (  # noqa: E402
    WavFrontend, apply_cmvn, apply_lfr, load_cmvn)

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
from common import REPO, Fixture  # noqa: E402

# tools/convert/sensevoice.py (same module name as this script: load it by path)
_spec = importlib.util.spec_from_file_location(
    "sensevoice_convert", os.path.join(REPO, "tools", "convert", "sensevoice.py"))
conv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conv)

SEED = 20251130
CLIP = "cmuarctic_aew_a0001_16k.flac"
START, N = 4000, 24000      # samples: 1.5 s from 0.25 s
N_MELS, LFR_M, LFR_N = 80, 7, 6
D_IN, D, HEADS, FFN, BLOCKS, TP, K = 560, 64, 4, 128, 3, 1, 11
PREFIX = "semantic_model."
LFR_LENGTHS = [1, 3, 5, 6, 7, 12, 13, 37]
OUT = "sensevoice"


def write_mvn(path, shift, scale):
    """An am.mvn in the Kaldi nnet1 text form SenseVoice ships (the converter's writer)."""
    conv.write_cmvn(path, shift, scale)


def lfr_ref(x, m, n):
    """The LFR rule as the SDK implements it (index clamping)."""
    T = x.shape[0]
    tl = -(-T // n)
    left = (m - 1) // 2
    out = np.empty((tl, m * x.shape[1]), np.float32)
    for i in range(tl):
        for j in range(m):
            r = min(max(i * n + j - left, 0), T - 1)
            out[i, j * x.shape[1]:(j + 1) * x.shape[1]] = x[r]
    return out


def randomise(module, g):
    for name, p in module.named_parameters():
        if name.endswith(("norm1.weight", "norm2.weight", "after_norm.weight", "tp_norm.weight")):
            v = torch.rand(p.shape, generator=g) + 0.5
        elif name.endswith(".bias"):
            v = (torch.rand(p.shape, generator=g) - 0.5) * 0.4
        elif name.endswith("fsmn_block.weight"):
            v = (torch.rand(p.shape, generator=g) - 0.5) * 0.6
        elif name == "embed.weight":
            v = torch.randn(p.shape, generator=g)
        else:
            bound = 1.0 / math.sqrt(p.shape[1])
            v = (torch.rand(p.shape, generator=g) * 2 - 1) * bound * math.sqrt(3)
        with torch.no_grad():
            # f16-representable values: the fixture stores the 2-D weights as f16, exactly
            p.copy_(v.half().float())


def sinusoid(T, depth):
    pos = torch.arange(1, T + 1, dtype=torch.float32)
    inc = torch.log(torch.tensor([10000.0])) / (depth / 2 - 1)
    inv = torch.exp(torch.arange(depth // 2, dtype=torch.float32) * -inc)
    s = pos[:, None] * inv[None, :]
    return torch.cat([torch.sin(s), torch.cos(s)], dim=1)


def explicit(enc, x):
    """Re-implementation of SenseVoiceEncoderSmall up to after_norm, x [T][560]."""
    x = x * math.sqrt(D) + sinusoid(x.shape[0], x.shape[1])
    blocks = list(enc.encoders0) + list(enc.encoders)
    for b in blocks:
        a = b.self_attn
        h = F.layer_norm(x, (x.shape[1],), b.norm1.weight, b.norm1.bias, 1e-5)
        qkv = a.linear_q_k_v(h)
        q, k, v = qkv.split(D, dim=1)
        vp = F.pad(v.t()[None], ((K - 1) // 2, K - 1 - (K - 1) // 2))
        fsmn = F.conv1d(vp, a.fsmn_block.weight, groups=D)[0].t() + v
        dk = D // HEADS
        qh = q.view(-1, HEADS, dk).transpose(0, 1) / math.sqrt(dk)
        kh = k.view(-1, HEADS, dk).transpose(0, 1)
        vh = v.view(-1, HEADS, dk).transpose(0, 1)
        att = torch.softmax(qh @ kh.transpose(1, 2), -1) @ vh
        o = a.linear_out(att.transpose(0, 1).reshape(-1, D)) + fsmn
        x = o if b.in_size != b.size else x + o
        h = F.layer_norm(x, (D,), b.norm2.weight, b.norm2.bias, 1e-5)
        x = x + b.feed_forward.w_2(torch.relu(b.feed_forward.w_1(h)))
    return F.layer_norm(x, (D,), enc.after_norm.weight, enc.after_norm.bias, 1e-5)


def main():
    torch.manual_seed(SEED)
    g = torch.Generator().manual_seed(SEED)
    wav, sr = sf.read(os.path.join(REPO, "..", "shared", "data", "speech", CLIP),
                      dtype="float32")
    assert sr == 16000
    wav = wav[START:START + N].copy()
    wt = torch.from_numpy(wav)[None]

    fe = WavFrontend(cmvn_file=None, n_mels=N_MELS, frame_length=25, frame_shift=10,
                     lfr_m=1, lfr_n=1, dither=0.0)
    fbank = fe(wt, [N])[0][0]
    T = fbank.shape[0]
    assert T == 1 + (N - 400) // 160

    for n in range(1, 401):
        xx = torch.randn(n, 3, generator=g)
        assert torch.equal(apply_lfr(xx, LFR_M, LFR_N), torch.from_numpy(lfr_ref(xx.numpy(),
                                                                                 LFR_M, LFR_N)))
    lfr = apply_lfr(fbank.clone(), LFR_M, LFR_N)
    mean, std = lfr.mean(0), lfr.std(0) + 1e-3
    shift = (-mean + 0.1 * torch.randn(D_IN, generator=g)).numpy()
    scale = (1.0 / std * (0.8 + 0.4 * torch.rand(D_IN, generator=g))).numpy()
    tmp = tempfile.mkdtemp()
    mvn = os.path.join(tmp, "am.mvn")
    write_mvn(mvn, shift, scale)
    off = load_cmvn(mvn)
    ours = conv.load_cmvn(mvn)
    assert np.array_equal(off[0].numpy(), ours[0]) and np.array_equal(off[1].numpy(), ours[1])
    feats = apply_cmvn(lfr.clone(), off)
    fe2 = WavFrontend(cmvn_file=mvn, n_mels=N_MELS, frame_length=25, frame_shift=10,
                      lfr_m=LFR_M, lfr_n=LFR_N, dither=0.0)
    assert torch.equal(fe2(wt, [N])[0][0], feats)

    sv = SenseVoiceSmall(encoder="SenseVoiceEncoderSmall", input_size=D_IN, vocab_size=40,
                         encoder_conf=dict(output_size=D, attention_heads=HEADS,
                                           linear_units=FFN, num_blocks=BLOCKS, tp_blocks=TP,
                                           kernel_size=K, sanm_shfit=0, normalize_before=True))
    assert type(sv.encoder).__name__ == "SenseVoiceEncoderSmall"
    assert sv.embed.weight.shape == (16, D_IN)
    sv.eval()
    randomise(sv, g)
    with torch.no_grad():
        lens = torch.tensor([feats.shape[0]])
        enc_in, lens4 = sv.prepend_inputs(feats[None].clone(), lens.clone())
        assert int(lens4[0]) == feats.shape[0] + 4
        e = sv.embed.weight
        assert torch.equal(enc_in[0, :4], e[[0, 1, 2, 15]])
        _, _, hidden, _ = sv.encoder(enc_in.clone(), lens4, extract_hidden=True)
        out = hidden[0, 4:]
        ref = explicit(sv.encoder, enc_in[0])[4:]
        err = (ref - out).abs().max().item()
        assert err < 1e-4, err
    print(f"T {T}, T_lfr {feats.shape[0]}, max|out| {out.abs().max():.3f}, "
          f"explicit vs official {err:.2e}")

    sd = {k: v.detach().numpy() for k, v in sv.state_dict().items()}
    os.makedirs(os.path.join(REPO, "tests", "data", OUT), exist_ok=True)
    conv.write_gguf(os.path.join(REPO, "tests", "data", OUT, "small.gguf"), sd, ours[0],
                    ours[1], HEADS, lfr_m=LFR_M, lfr_n=LFR_N, n_mels=N_MELS, prefix=PREFIX,
                    f16=True,
                    name="SenseVoice encoder, small random (tools/golden/sensevoice.py)")

    fx = Fixture(os.path.join(OUT, "small_golden.gguf"),
                 modules=("torch", "torchaudio", "funasr", "flexicodec", "gguf"))
    fx.set("sotto.golden.layout", "time-major [T][C]")
    fx.set("sotto.golden.clip", CLIP)
    fx.add("wave", wav)
    fx.add("fbank", fbank.numpy())
    fx.add("lfr_cmvn", feats.numpy())
    for n in LFR_LENGTHS:
        fx.add(f"lfr.{n}", apply_lfr(fbank[:n].clone(), LFR_M, LFR_N).numpy())
    fx.add("enc_in", enc_in[0].numpy())
    fx.add("enc_out", out.numpy())
    fx.write()


if __name__ == "__main__":
    main()
