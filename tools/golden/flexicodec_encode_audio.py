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
Usage: python tools/golden/flexicodec_encode_audio.py [--speech DIR]
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
    args = ap.parse_args()
    torch.set_num_threads(1)
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
