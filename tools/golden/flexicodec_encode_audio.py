"""Golden fixtures for FlexiCodec's whole encode path, audio in, groups out: the official
flexicodec 0.1.2 `FlexiCodec.forward` (SenseVoice features → 4/3 downsampling →
forward_features(encode_only=True)) with a small random SenseVoice attached, on ~2 s of real
speech, with FunASR's WavFrontend (Kaldi fbank, LFR 7/6, CMVN) as the front end.

How it is built (building blocks of tools/golden/flexicodec_encode.py and
tools/golden/sensevoice.py, imported)
- The codec: the `encode_small` config of flexicodec_encode.py (DAC encoder_dim 2 with the
  released rates, latent 32, ConvNeXt 48 × 2, FSQ [8]×5, 4 RVQ stages of 64 × 8, bottleneck
  1 layer, aggregators 2 layers) but with a semantic width of 64 instead of 512: FlexiCodec
  forces ssl_dim = 512 for SenseVoice, so after construction `convnext_encoder` and
  `semantic_aggregator` are rebuilt from the package's own classes at width 64 (the semantic
  aggregator then has no input/output projections, as in the release where every width is
  512). Random weights (flexicodec_make_checkpoint.randomize), the DAC encoder calibrated on
  the clip (flexicodec_encode.calibrate_encoder).
- SenseVoice: SenseVoiceSmall with the encoder of sensevoice.py's fixture (560 → 64, 4 heads,
  FFN 128, 3 blocks + 1 tp block, FSMN kernel 11), random weights drawn f16-representable,
  attached as `model.semantic_model` (funasr's AutoModel is bypassed); an am.mvn with this
  clip's statistics (jittered).
- Front end: WavFrontend(cmvn, lfr 7/6, 80 mels, hamming, dither 0). FunASR dithers by
  default (Gaussian noise, std 1 on int16-scaled samples); the SDK never dithers, so the
  reference does not either.

The wave is 31 000 samples (1.94 s): 192 fbank frames → 32 LFR frames → SenseVoice [32][64] →
int(32 / 1.33333) = 24 frames at 12.5 Hz; the DAC encoder gives 25, both truncated to 24.

Reference: `FlexiCodec.forward({"audio", "x", "manual_threshold": θ}, encode_only=True)` per
threshold θ (the config's 0.91 — the default —, 1.0 = no merging, and one threshold placed
between the clip's similarities so that some frames merge); the step-by-step values come
from the same official submodules and are asserted equal to forward's codes.

Writes tests/data/flexicodec/
- encode-audio-small.gguf: tools/convert/flexicodec.py --with-encoder with SenseVoice
  (convert(..., sensevoice=...)): the codec's weights f32, SenseVoice's matrices f16 (drawn
  f16-representable, so nothing is lost).
- encode-audio-small_golden.gguf:
    `wave` [N]                    the clip (float ±1)
    `fbank` [T_fb][80]            WavFrontend fbank (dither 0)
    `sv_out` [T_lfr][64]          SenseVoice output (hidden_out[:, 4:])
    `features` [T_sem][64]        after _downsample_semantic_features
    per threshold k (θ_k = metadata flexicodec.threshold.k):
    `lengths_k` [G], `fsq_k` [G], `rvq_k` [G][n_q], `sim_k` [T−1],
    `fsq_bound_k` [G][levels] (distance to a rounding boundary = near-ties),
    `rvq_margin_k` [G][n_q] (the reference's best-minus-second score per stage)

With --full DIR (never under the repository: about 1.5 GB) it instead builds the FULL
released configuration into DIR: the codec of flexicodec_make_checkpoint.py `12hz_v1`
(semantic width 512 as released, no module rebuilt; random weights by randomize, DAC decoder
and encoder calibrated) and a random SenseVoice-Small of the real size (560 → 512, 4 heads,
FFN 2048, 50 blocks + 20 tp blocks, FSMN kernel 11; drawn as the small one, which keeps
the activations moderate without rescaling: the residual stream's RMS grows from 1.5 after
the first block to about 12 after the 50th, printed and checked below 100),
on the same clip with an am.mvn of its statistics; converted f32 (SenseVoice f32 too) into
DIR/encode-audio-full.gguf, the fixture DIR/encode-audio-full_golden.gguf with the tensors
above (512-d features, 24 RVQ stages) and four thresholds: 0.91, 1.0, one between the clip's
similarities (at a third of the sorted values) and one near their bottom (groups up to the
8-frame cap). tests/golden/test_flexicodec_encode_audio.c checks them when
SOTTO_FLEXICODEC_ENCODE_FULL=DIR is set. The official encode time per threshold (one thread)
is printed.

Usage: python tools/golden/flexicodec_encode_audio.py [--speech DIR] [--full DIR]
"""

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
import flexicodec  # noqa: E402,F401  (the official package, before our folder is on the path)

sys.path.append(HERE)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from funasr.frontends.wav_frontend import WavFrontend  # noqa: E402
from flexicodec.customized_sensevoice.model import SenseVoiceSmall  # noqa: E402
from flexicodec.model_blocks.mimi.transformer import QueryTokenAggregator  # noqa: E402

from common import DATA, REPO, Fixture  # noqa: E402
import flexicodec_encode as fe  # noqa: E402
import flexicodec_make_checkpoint as mk  # noqa: E402
import sensevoice as svg  # noqa: E402

SEED = 20251205
MODULES = ("torch", "torchaudio", "funasr", "flexicodec", "safetensors", "gguf", "soundfile")
SSL = svg.D            # 64: SenseVoice output = the codec's semantic width
MIN_SIM_GAP = 1e-4     # similarities this close to a threshold are refused
NAME = "encode_audio_small"
CONFIG = dict(fe.ENCODE_SMALL, agg_transformer_dim=SSL)
mk.CONFIGS[NAME] = CONFIG
mk.CONVNEXT_INTERMEDIATE[NAME] = fe.mk.CONVNEXT_INTERMEDIATE["encode_small"]


def build_codec():
    """encode_small at semantic width SSL (see the module docstring)."""
    model = mk.build(NAME)
    model.ssl_dim = SSL
    mk.rebuild_convnext(model, CONFIG, mk.CONVNEXT_INTERMEDIATE[NAME])
    model.semantic_aggregator = QueryTokenAggregator(
        dim=CONFIG["agg_transformer_dim"], in_out_dim=SSL,
        num_heads=CONFIG["agg_transformer_num_heads"],
        num_layers=CONFIG["agg_transformer_num_layers"],
        dim_feedforward=CONFIG["agg_transformer_dim_feedforward"], causal=False,
        context_frames=CONFIG["transformer_context_frames"], use_mean_pooling_init=True)
    return model.eval()


def build_sensevoice(g):
    sv = SenseVoiceSmall(encoder="SenseVoiceEncoderSmall", input_size=svg.D_IN, vocab_size=40,
                         encoder_conf=dict(output_size=SSL, attention_heads=svg.HEADS,
                                           linear_units=svg.FFN, num_blocks=svg.BLOCKS,
                                           tp_blocks=svg.TP, kernel_size=svg.K, sanm_shfit=0,
                                           normalize_before=True))
    sv.eval()
    svg.randomise(sv, g)
    return sv


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speech", default=os.environ.get(
        "SOTTO_SPEECH_DIR", os.path.join(REPO, "..", "shared", "data", "speech")))
    ap.add_argument("--full", help="build the full released config into this folder instead "
                                   "(outside the repository)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.full:
        return main_full(args)
    conv = fe.load_converter()
    wave = fe.load_wave(args.speech)
    N = wave.numel()
    g = torch.Generator().manual_seed(SEED)

    # front end (FunASR), dither 0
    wt = wave[None]
    fb = WavFrontend(cmvn_file=None, n_mels=svg.N_MELS, frame_length=25, frame_shift=10,
                     lfr_m=1, lfr_n=1, dither=0.0)(wt, [N])[0][0]
    from funasr.frontends.wav_frontend import apply_lfr
    lfr = apply_lfr(fb.clone(), svg.LFR_M, svg.LFR_N)
    mean, std = lfr.mean(0), lfr.std(0) + 1e-3
    shift = (-mean + 0.1 * torch.randn(svg.D_IN, generator=g)).numpy()
    scale = (1.0 / std * (0.8 + 0.4 * torch.rand(svg.D_IN, generator=g))).numpy()
    tmp = tempfile.mkdtemp()
    mvn = os.path.join(tmp, "am.mvn")
    svg.write_mvn(mvn, shift, scale)
    svc = conv.load_sensevoice_converter()
    shift32, scale32 = svc.load_cmvn(mvn)
    feats = WavFrontend(cmvn_file=mvn, n_mels=svg.N_MELS, frame_length=25, frame_shift=10,
                        lfr_m=svg.LFR_M, lfr_n=svg.LFR_N, dither=0.0)(wt, [N])[0][0]

    sv = build_sensevoice(g)
    torch.manual_seed(SEED)
    model = mk.randomize(build_codec(), SEED)
    fe.calibrate_encoder(model, wave)
    model.semantic_model = sv

    out_dir = os.path.join(DATA, "flexicodec")
    model_path = os.path.join(out_dir, "encode-audio-small.gguf")
    with tempfile.TemporaryDirectory() as ck_dir:
        sd = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()
              if not k.startswith("semantic_model.")}
        from safetensors.torch import save_file
        import yaml
        save_file(sd, os.path.join(ck_dir, f"{NAME}.safetensors"))
        with open(os.path.join(ck_dir, f"{NAME}_config.yaml"), "w") as f:
            yaml.safe_dump({"model": dict(CONFIG)}, f, sort_keys=False)
        sv_sd = {k: v.detach().numpy() for k, v in sv.state_dict().items()}
        conv.convert(os.path.join(ck_dir, f"{NAME}.safetensors"),
                     os.path.join(ck_dir, f"{NAME}_config.yaml"), model_path, "f32",
                     name="flexicodec-encode-audio-small", with_encoder=True,
                     sensevoice=dict(sd=sv_sd, shift=shift32, scale=scale32, heads=svg.HEADS,
                                     f16=True))

    fx = Fixture("flexicodec/encode-audio-small_golden.gguf", MODULES)
    fx.set("sotto.golden.layout", "time-major [T][C]")
    fx.add("wave", wave.numpy())
    fx.add("fbank", fb.numpy())
    with torch.no_grad():
        enc_in, lens4 = sv.prepend_inputs(feats[None].clone(), torch.tensor([feats.shape[0]]))
        _, _, hidden, _ = sv.encoder(enc_in, lens4, extract_hidden=True)
        sv_out = hidden[:, 4:].transpose(1, 2)
        sem = model._downsample_semantic_features(sv_out)
        ac = model.dac.encoder(model.dac.preprocess(wave.view(1, 1, -1), 16000))
        T = min(sem.shape[-1], ac.shape[-1])
        _, sims, _ = model._perform_similarity_alignment_vectorized(
            sem[..., :T].transpose(1, 2))
    fx.add("sv_out", sv_out[0].transpose(0, 1).numpy())
    fx.add("features", sem[0].transpose(0, 1).numpy())
    s = np.sort(sims[0].numpy())
    mid = len(s) // 3
    data_theta = float((s[mid] + s[mid + 1]) / 2)
    thresholds = (float(CONFIG["similarity_threshold"]), 1.0, data_theta)
    print(f"  fbank {tuple(fb.shape)}, LFR {tuple(feats.shape)}, SenseVoice "
          f"{tuple(sv_out.shape)}, features {tuple(sem.shape)}, DAC {tuple(ac.shape)}; "
          f"similarities {s.min():.4f} .. {s.max():.4f}")
    for k, theta in enumerate(thresholds):
        with torch.no_grad():
            out = model.forward({"audio": wave[None], "x": feats[None].clone(),
                                 "manual_threshold": theta}, encode_only=True)
        lengths, fsq, codes = fe_reference(model, sem, ac, theta, fx, k)
        assert torch.equal(lengths, out.token_lengths[0]), (lengths, out.token_lengths)
        assert torch.equal(fsq, out.semantic_codes[0, 0])
        assert torch.equal(codes.transpose(0, 1), out.acoustic_codes[0])
    fx.set("flexicodec.n_thresholds", len(thresholds))
    fx.set("flexicodec.n_samples", int(N))
    fx.write()
    total = sum(os.path.getsize(os.path.join(out_dir, f)) for f in
                ("encode-audio-small.gguf", "encode-audio-small_golden.gguf"))
    print(f"  fixture files: {total / 1e6:.2f} MB together")
    assert total < 2.5e6


FULL_NAME = "12hz_v1"
FULL_SV = dict(output_size=512, attention_heads=4, linear_units=2048, num_blocks=50,
               tp_blocks=20, kernel_size=11, sanm_shfit=0, normalize_before=True)


def sensevoice_rms(sv, enc_in, lens):
    """RMS of the residual stream after each block (forward hooks) and of the output."""
    rms = []
    hooks = [b.register_forward_hook(
        lambda m, i, o: rms.append(float((o[0] if isinstance(o, tuple) else o)
                                         .pow(2).mean().sqrt())))
        for b in list(sv.encoder.encoders0) + list(sv.encoder.encoders)]
    try:
        with torch.no_grad():
            _, _, hidden, _ = sv.encoder(enc_in.clone(), lens, extract_hidden=True)
    finally:
        for h in hooks:
            h.remove()
    return rms, hidden


def pick_thresholds(s, theta_cfg):
    """The config's θ, 1.0, a θ at a third of the sorted similarities s and one near their
    bottom (large merged runs, cut at max_tokens_per_group); each θ midway between two
    neighbouring similarities more than 4·MIN_SIM_GAP apart."""
    def mid(i):
        for j in range(i, len(s) - 1):
            if s[j + 1] - s[j] > 4 * MIN_SIM_GAP:
                return float((s[j] + s[j + 1]) / 2)
        raise SystemExit("no threshold found between the similarities")
    return (float(theta_cfg), 1.0, mid(len(s) // 3), mid(1))


def main_full(args):
    out_dir = os.path.abspath(args.full)
    if out_dir == REPO or out_dir.startswith(REPO + os.sep):
        raise SystemExit("--full writes about 1.5 GB: choose a folder outside the repository")
    os.makedirs(out_dir, exist_ok=True)
    import time
    conv = fe.load_converter()
    wave = fe.load_wave(args.speech)
    N = wave.numel()
    g = torch.Generator().manual_seed(SEED)
    wt = wave[None]
    from funasr.frontends.wav_frontend import apply_lfr
    fb = WavFrontend(cmvn_file=None, n_mels=svg.N_MELS, frame_length=25, frame_shift=10,
                     lfr_m=1, lfr_n=1, dither=0.0)(wt, [N])[0][0]
    lfr = apply_lfr(fb.clone(), svg.LFR_M, svg.LFR_N)
    mean, std = lfr.mean(0), lfr.std(0) + 1e-3
    shift = (-mean + 0.1 * torch.randn(svg.D_IN, generator=g)).numpy()
    scale = (1.0 / std * (0.8 + 0.4 * torch.rand(svg.D_IN, generator=g))).numpy()
    mvn = os.path.join(out_dir, "am.mvn")
    svg.write_mvn(mvn, shift, scale)
    svc = conv.load_sensevoice_converter()
    shift32, scale32 = svc.load_cmvn(mvn)
    feats = WavFrontend(cmvn_file=mvn, n_mels=svg.N_MELS, frame_length=25, frame_shift=10,
                        lfr_m=svg.LFR_M, lfr_n=svg.LFR_N, dither=0.0)(wt, [N])[0][0]

    sv = SenseVoiceSmall(encoder="SenseVoiceEncoderSmall", input_size=svg.D_IN, vocab_size=40,
                         encoder_conf=dict(FULL_SV))
    sv.eval()
    svg.randomise(sv, g)
    enc_in, lens4 = sv.prepend_inputs(feats[None].clone(), torch.tensor([feats.shape[0]]))
    rms, hidden = sensevoice_rms(sv, enc_in, lens4)
    print("  SenseVoice residual-stream RMS per block: "
          + " ".join(f"{r:.2f}" for r in rms[::5]) + f" ... {rms[-1]:.2f}; output RMS "
          f"{float(hidden.pow(2).mean().sqrt()):.3f}, max |out| {float(hidden.abs().max()):.2f}")
    assert max(rms) < 100 and all(np.isfinite(rms)), "SenseVoice activations blow up"

    torch.manual_seed(SEED)
    model = mk.randomize(mk.build(FULL_NAME), SEED)
    fe.calibrate_encoder(model, wave)
    model.semantic_model = sv
    cfg = mk.CONFIGS[FULL_NAME]
    assert model.ssl_dim == FULL_SV["output_size"]

    model_path = os.path.join(out_dir, "encode-audio-full.gguf")
    with tempfile.TemporaryDirectory(dir=out_dir) as ck_dir:
        sd = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()
              if not k.startswith("semantic_model.")}
        from safetensors.torch import save_file
        import yaml
        save_file(sd, os.path.join(ck_dir, f"{FULL_NAME}.safetensors"))
        del sd
        with open(os.path.join(ck_dir, f"{FULL_NAME}_config.yaml"), "w") as f:
            yaml.safe_dump({"model": dict(cfg)}, f, sort_keys=False)
        sv_sd = {k: v.detach().numpy() for k, v in sv.state_dict().items()}
        conv.convert(os.path.join(ck_dir, f"{FULL_NAME}.safetensors"),
                     os.path.join(ck_dir, f"{FULL_NAME}_config.yaml"), model_path, "f32",
                     name="flexicodec-encode-audio-full-random", with_encoder=True,
                     sensevoice=dict(sd=sv_sd, shift=shift32, scale=scale32,
                                     heads=FULL_SV["attention_heads"], f16=False))

    fx = Fixture("unused", MODULES)
    fx.path = os.path.join(out_dir, "encode-audio-full_golden.gguf")
    fx.set("sotto.golden.layout", "time-major [T][C]")
    fx.add("wave", wave.numpy())
    fx.add("fbank", fb.numpy())
    with torch.no_grad():
        sv_out = hidden[:, 4:].transpose(1, 2)
        sem = model._downsample_semantic_features(sv_out)
        ac = model.dac.encoder(model.dac.preprocess(wave.view(1, 1, -1), 16000))
        T = min(sem.shape[-1], ac.shape[-1])
        _, sims, _ = model._perform_similarity_alignment_vectorized(
            sem[..., :T].transpose(1, 2))
    fx.add("sv_out", sv_out[0].transpose(0, 1).numpy())
    fx.add("features", sem[0].transpose(0, 1).numpy())
    s = np.sort(sims[0].numpy())
    thresholds = pick_thresholds(s, cfg["similarity_threshold"])
    print(f"  fbank {tuple(fb.shape)}, LFR {tuple(feats.shape)}, SenseVoice "
          f"{tuple(sv_out.shape)}, features {tuple(sem.shape)}, DAC {tuple(ac.shape)} RMS "
          f"{float(ac.pow(2).mean().sqrt()):.3f}; similarities {s.min():.4f} .. {s.max():.4f}")
    for k, theta in enumerate(thresholds):
        with torch.no_grad():
            t0 = time.time()
            out = model.forward({"audio": wave[None], "x": feats[None].clone(),
                                 "manual_threshold": theta}, encode_only=True)
            dt = time.time() - t0
        print(f"  official FlexiCodec.forward(encode_only) at theta {theta:.6f}: {dt:.2f} s "
              f"(1 thread)")
        lengths, fsq, codes = fe_reference(model, sem, ac, theta, fx, k)
        assert torch.equal(lengths, out.token_lengths[0]), (lengths, out.token_lengths)
        assert torch.equal(fsq, out.semantic_codes[0, 0])
        assert torch.equal(codes.transpose(0, 1), out.acoustic_codes[0])
    fx.set("flexicodec.n_thresholds", len(thresholds))
    fx.set("flexicodec.n_samples", int(N))
    fx.write()
    print(f"  wrote {model_path} ({os.path.getsize(model_path) / 1e6:.0f} MB) and "
          f"{fx.path} ({os.path.getsize(fx.path) / 1e6:.2f} MB)")


def fe_reference(model, sem, ac, theta, fx, k):
    """The encode steps after the semantic features, official submodules (as
    flexicodec_encode.reference), with the near-tie measures."""
    with torch.no_grad():
        model.manual_threshold = theta
        T = min(sem.shape[-1], ac.shape[-1])
        sem, ac = sem[..., :T], ac[..., :T]
        A, sim, nseg = model._perform_similarity_alignment_vectorized(sem.transpose(1, 2))
        sem_agg = model.semantic_aggregator(sem, A, nseg)
        ac_agg = model.acoustic_aggregator(ac, A, nseg)
        z = model.semantic_vq.fsq.project_in(model.convnext_encoder(sem_agg).transpose(1, 2))
        bound = model.semantic_vq.fsq.bound(z)
        sem_vq, fsq_idx = model.semantic_vq(model.convnext_encoder(sem_agg))[:2]
        rvq_in = ac_agg - model.convnext_decoder(sem_vq)
        codes, margins = fe.rvq_steps(model.dac.quantizer, rvq_in,
                                      model.dac.quantizer.n_codebooks)
    lengths = A.sum(dim=2).long()[0]
    gap = float((sim - theta).abs().min())
    frac = (bound - bound.floor() - 0.5).abs().min()
    G = int(lengths.numel())
    print(f"  theta {theta:.6f}: {T} frames -> {G} groups, lengths {lengths.tolist()}; "
          f"min |sim - theta| {gap:.2e}; min FSQ distance to a rounding boundary "
          f"{float(frac):.2e}; min RVQ margin {float(margins.min()):.2e}")
    assert gap > MIN_SIM_GAP, "a similarity too close to the threshold: change the seed"
    fx.set(f"flexicodec.threshold.{k}", float(theta))
    fx.add(f"sim_{k}", sim[0].numpy())
    fx.add(f"lengths_{k}", lengths.numpy(), np.int32)
    fx.add(f"fsq_bound_{k}", bound[0].numpy())
    fx.add(f"fsq_{k}", fsq_idx[0, 0].numpy(), np.int32)
    fx.add(f"rvq_{k}", codes.numpy(), np.int32)
    fx.add(f"rvq_margin_{k}", margins.numpy())
    return lengths, fsq_idx[0, 0], codes


if __name__ == "__main__":
    main()
