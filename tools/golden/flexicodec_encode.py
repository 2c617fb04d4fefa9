"""Golden fixtures for FlexiCodec's encode side WITHOUT SenseVoice: the official flexicodec
0.1.2 modules on a small random-weight model, from a real waveform and a given semantic
feature sequence (what SenseVoice + the 4/3 downsampling would deliver).

The model is the `small` config of tools/golden/flexicodec_make_checkpoint.py narrowed
further: DAC encoder_dim 2 with the released rates [4, 4, 5, 8, 2] (widths 2 → 64, latent
32), DAC decoder_dim 64, ConvNeXt 48 wide (2 layers, intermediate 64), FSQ [8]×5, 4 RVQ
stages of 64 × 8, bottleneck transformer 1 layer of width 32, and two query-token
aggregators of 2 layers each (4 heads, FFN 96): the semantic one of width 64 between
projections from/to the 512-d features (ProjectedTransformer's input_proj /
output_projs.0, absent in the release where every width is 512), the acoustic one of the
latent width 32. Every parameter is random (flexicodec_make_checkpoint.randomize); the DAC
encoder's weight-norm gains are then rescaled layer by layer on the fixture's waveform so
that its activations stay of unit scale (calibrate_encoder, as calibrate_output does for the
decoder).

Inputs: 31 000 samples (1.94 s) of real speech (16 kHz) and 32 semantic frames at the
SenseVoice rate (512-d), piecewise constant plus noise of per-segment strength (one segment
long enough to exceed max_tokens_per_group), which `_downsample_semantic_features`
(F.interpolate, factor 1.33333) turns into 24 frames at 12.5 Hz; the DAC encoder gives 25
frames (ceil(31000 / 1280)), so both streams are truncated to 24 as forward_features does.

Reference: `FlexiCodec.forward_features(audio, 16000, semantic_repr=…, encode_only=True,
manual_threshold=θ)` for θ in THRESHOLDS, whose codes and lengths are recorded; the
intermediate values come from the same official submodules called step by step (and the
step-by-step codes are asserted equal to forward_features').

Writes under tests/data/flexicodec/:
- `encode-small.gguf`: the converted model, `tools/convert/flexicodec.py --with-encoder`;
- `encode-small_golden.gguf`:
    `wave` [N]                      the waveform (N = 31 000)
    `features` [T_sem][512]         12.5 Hz semantic features (after the official downsampling)
    `dac_enc` [T_ac][latent]        dac.encoder on the zero-padded waveform (T_ac = 25)
  and per threshold k (θ_k in metadata `flexicodec.threshold.k`):
    `sim_k` [T−1]                   cosine similarities of consecutive frames
    `lengths_k` [G]                 token lengths (group lengths)
    `sem_agg_k` [G][512]            semantic_aggregator output
    `ac_agg_k` [G][latent]          acoustic_aggregator output
    `fsq_bound_k` [G][levels]       FSQ bound(project_in(convnext_encoder(sem_agg))) before
                                    rounding
    `fsq_k` [G]                     FSQ indices
    `rvq_in_k` [G][latent]          acoustic residual ac_agg − convnext_decoder(FSQ output)
    `rvq_k` [G][n_codebooks]        RVQ codes (all stored stages)
    `rvq_margin_k` [G][n_codebooks] the reference's own score gap between its best and
                                    second-best codebook row (−dist), per stage
Usage: python tools/golden/flexicodec_encode.py [--speech DIR] [--keep DIR]
(DIR defaults to $SOTTO_SPEECH_DIR, else ../shared/data/speech beside the repository)
"""

import argparse
import os
import sys
import tempfile

import numpy as np
import soundfile as sf
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
import flexicodec  # noqa: E402,F401  (the official package, before our folder is on the path)

sys.path.append(HERE)
from common import DATA, REPO, Fixture  # noqa: E402
import flexicodec_make_checkpoint as mk  # noqa: E402

SEED = 20251203
MODULES = ("torch", "flexicodec", "safetensors", "gguf", "soundfile")
SPEECH = "librispeech_2412-153948-0000_16k.flac"
START_S = 0.5
N_SAMPLES = 31000
T_LFR = 32            # semantic frames at the SenseVoice rate -> int(32 / 1.33333) = 24
THRESHOLDS = (0.91, 1.0)
MIN_SIM_GAP = 1e-4    # the fixture refuses similarities this close to a threshold

ENCODE_SMALL = dict(mk.SMALL, latent_dim=32, decoder_dim=64, convnext_dim=48,
                    transformer_num_layers=1, transformer_dim=32, transformer_num_heads=2,
                    transformer_dim_feedforward=64, agg_transformer_num_layers=2,
                    agg_transformer_dim=64, agg_transformer_num_heads=4,
                    agg_transformer_dim_feedforward=96, encoder_dim=2)
mk.CONFIGS["encode_small"] = ENCODE_SMALL
mk.CONVNEXT_INTERMEDIATE["encode_small"] = 64


def load_converter():
    """tools/convert/flexicodec.py as a module (imported by path: its name is the package's)."""
    import importlib.util

    path = os.path.join(HERE, "..", "convert", "flexicodec.py")
    spec = importlib.util.spec_from_file_location("sotto_convert_flexicodec", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load_wave(speech_dir):
    x, sr = sf.read(os.path.join(speech_dir, SPEECH), dtype="float32", always_2d=True)
    assert sr == 16000, sr
    x = x[:, 0]
    s = int(START_S * sr)
    return torch.from_numpy(np.ascontiguousarray(x[s:s + N_SAMPLES]))


def make_features(g):
    """[1, 512, T_LFR]: segments of 1..14 frames, each a random direction plus noise of its
    own strength (cosine within a segment about 0.85 .. 0.99)."""
    segs = [3, 14, 1, 2, 5, 1, 4, 2]
    assert sum(segs) == T_LFR
    cols = []
    for n in segs:
        base = torch.randn(512, generator=g)
        sigma = 0.1 + 0.35 * float(torch.rand(1, generator=g))
        for _ in range(n):
            cols.append(base + sigma * torch.randn(512, generator=g))
    return torch.stack(cols, dim=1).unsqueeze(0)


def calibrate_encoder(model, wave):
    """Rescales the DAC encoder's weight-norm gains on `wave`: the first conv and each strided
    conv to an output RMS of 1, each residual unit's branch to 0.3 times its input, the last
    conv to an RMS of 1 (plain random draws grow the activations layer after layer)."""
    enc = model.dac.encoder.block

    def rms(t):
        return float(t.pow(2).mean().sqrt())

    def scale(conv, x, target):
        conv.weight_g.mul_(target / rms(conv(x)))
        return conv(x)

    with torch.no_grad():
        x = model.dac.preprocess(wave.view(1, 1, -1), 16000)
        x = scale(enc[0], x, 1.0)
        for blk in enc[1:-2]:  # EncoderBlocks: 3 residual units, Snake, strided conv
            for ru in blk.block[:3]:
                h = ru.block[2](ru.block[1](ru.block[0](x)))
                x = x + scale(ru.block[3], h, 0.3 * rms(x))
            x = scale(blk.block[4], blk.block[3](x), 1.0)
        scale(enc[-1], enc[-2](x), 1.0)


def rvq_steps(quantizer, z, n_q):
    """ResidualVectorQuantize.forward (eval) stage by stage, with the score margins."""
    residual = z
    codes, margins = [], []
    for q in quantizer.quantizers[:n_q]:
        z_e = q.in_proj(residual)
        enc = torch.nn.functional.normalize(z_e[0].transpose(0, 1))
        cb = torch.nn.functional.normalize(q.codebook.weight)
        dist = (enc.pow(2).sum(1, keepdim=True) - 2 * enc @ cb.t()
                + cb.pow(2).sum(1, keepdim=True).t())
        top = (-dist).topk(2, dim=1).values
        margins.append(top[:, 0] - top[:, 1])
        z_q, _, _, idx, _ = q(residual)
        codes.append(idx[0])
        residual = residual - z_q
    return torch.stack(codes, 1), torch.stack(margins, 1)


def reference(model, wave, feats_lfr, theta, fx, k):
    """Step-by-step encode with the official submodules; checked against forward_features."""
    audio = wave.view(1, 1, -1)
    with torch.no_grad():
        out = model.forward_features(audio, 16000, semantic_repr=feats_lfr.clone(),
                                     encode_only=True, manual_threshold=theta)
        model.manual_threshold = theta
        sem = model._downsample_semantic_features(feats_lfr)
        ac = model.dac.encoder(model.dac.preprocess(audio, 16000))
        T = min(sem.shape[-1], ac.shape[-1])
        sem, ac = sem[..., :T], ac[..., :T]
        A, sim, nseg = model._perform_similarity_alignment_vectorized(sem.transpose(1, 2))
        sem_agg = model.semantic_aggregator(sem, A, nseg)
        ac_agg = model.acoustic_aggregator(ac, A, nseg)
        z = model.semantic_vq.fsq.project_in(model.convnext_encoder(sem_agg).transpose(1, 2))
        bound = model.semantic_vq.fsq.bound(z)
        sem_vq, fsq_idx = model.semantic_vq(model.convnext_encoder(sem_agg))[:2]
        rvq_in = ac_agg - model.convnext_decoder(sem_vq)
        n_q = model.dac.quantizer.n_codebooks
        codes, margins = rvq_steps(model.dac.quantizer, rvq_in, n_q)
    lengths = A.sum(dim=2).long()[0]
    assert torch.equal(lengths, out.token_lengths[0]), (lengths, out.token_lengths)
    assert torch.equal(fsq_idx[0, 0], out.semantic_codes[0, 0])
    assert torch.equal(codes.transpose(0, 1), out.acoustic_codes[0]), "RVQ step by step"
    gap = float((sim - theta).abs().min())
    G = int(lengths.numel())
    print(f"  theta {theta}: {T} frames -> {G} groups, lengths {lengths.tolist()}; "
          f"min |sim - theta| {gap:.2e}; min RVQ margin {float(margins.min()):.2e}; "
          f"FSQ indices {fsq_idx[0, 0].tolist()[:6]}...")
    assert gap > MIN_SIM_GAP, "a similarity too close to the threshold: change the seed"
    fx.set(f"flexicodec.threshold.{k}", float(theta))
    fx.add(f"sim_{k}", sim[0].numpy())
    fx.add(f"lengths_{k}", lengths.numpy(), np.int32)
    fx.add(f"sem_agg_{k}", sem_agg[0].transpose(0, 1).numpy())
    fx.add(f"ac_agg_{k}", ac_agg[0].transpose(0, 1).numpy())
    fx.add(f"fsq_bound_{k}", bound[0].numpy())
    fx.add(f"fsq_{k}", fsq_idx[0, 0].numpy(), np.int32)
    fx.add(f"rvq_in_{k}", rvq_in[0].transpose(0, 1).numpy())
    fx.add(f"rvq_{k}", codes.numpy(), np.int32)
    fx.add(f"rvq_margin_{k}", margins.numpy())
    return sem, ac


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speech", default=os.environ.get(
        "SOTTO_SPEECH_DIR", os.path.join(REPO, "..", "shared", "data", "speech")))
    ap.add_argument("--keep", help="also leave the PyTorch checkpoint in this folder")
    args = ap.parse_args()
    torch.set_num_threads(1)
    conv = load_converter()
    wave = load_wave(args.speech)
    out_dir = os.path.join(DATA, "flexicodec")
    name = "encode_small"
    model_path = os.path.join(out_dir, "encode-small.gguf")
    fx = Fixture("flexicodec/encode-small_golden.gguf", MODULES)
    with tempfile.TemporaryDirectory() as tmp:
        ck_dir = args.keep or tmp
        torch.manual_seed(SEED)
        model = mk.randomize(mk.build(name), SEED)
        calibrate_encoder(model, wave)
        mk.save(model, name, ck_dir)
        conv.convert(os.path.join(ck_dir, f"{name}.safetensors"),
                     os.path.join(ck_dir, f"{name}_config.yaml"), model_path, "f32",
                     name="flexicodec-encode-small", with_encoder=True)
        model = mk.load_official(ck_dir, name)
    g = torch.Generator().manual_seed(SEED + 1)
    feats = make_features(g)
    fx.add("wave", wave.numpy())
    for k, theta in enumerate(THRESHOLDS):
        sem, ac = reference(model, wave, feats, theta, fx, k)
    with torch.no_grad():
        full_sem = model._downsample_semantic_features(feats)
        full_ac = model.dac.encoder(model.dac.preprocess(wave.view(1, 1, -1), 16000))
    fx.add("features", full_sem[0].transpose(0, 1).numpy())
    fx.add("dac_enc", full_ac[0].transpose(0, 1).numpy())
    fx.set("flexicodec.n_thresholds", len(THRESHOLDS))
    print(f"  features {tuple(full_sem.shape)}, DAC encoder {tuple(full_ac.shape)}, "
          f"RMS {float(full_ac.pow(2).mean().sqrt()):.3f}")
    fx.write()


if __name__ == "__main__":
    main()
