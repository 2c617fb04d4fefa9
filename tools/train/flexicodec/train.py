"""Training loop for a small FlexiCodec, built from the official `flexicodec` package classes
(FlexiCodec with its DAC encoder/decoder, FSQ, RVQ, query-token aggregators and bottleneck
transformer; SenseVoiceSmall for the semantic encoder) at reduced widths and depths, and
trained from scratch on CPU or GPU.

What differs from the released model's training, and why
- The semantic encoder is a small SenseVoice-architecture encoder trained jointly with the
  codec: the pretrained SenseVoice-Small (and the supervision behind it) is not available
  here. FlexiCodec's own `forward` runs the semantic model under no_grad (it is frozen in the
  release), so this loop runs the same steps itself: WavFrontend features (Kaldi fbank, LFR
  7/6, CMVN, dither 0) -> `prepend_inputs` -> `encoder(..., extract_hidden=True)` ->
  `hidden_out[:, 4:]` -> `FlexiCodec.forward_features`, with gradients through the encoder.
- The CMVN statistics are measured on the training data (written as OUT/am.mvn in the
  SenseVoice text form) instead of SenseVoice's shipped am.mvn.
- The merge threshold is drawn per batch, as in the original's training, but as a quantile of
  the batch's own adjacent-frame similarities, so that the frame rate it gives is uniform in
  train.merge_rate (3-12.5 Hz). The original draws it uniformly in [0.8, 1.0], a range made
  for the similarity distribution of the pretrained SenseVoice; a semantic encoder trained
  from scratch starts with near-orthogonal frames, so a fixed range would merge nothing and
  the decoder would never see merged groups.
- No discriminators (budget): multi-scale log-mel L1 + multi-resolution STFT loss, the RVQ/FSQ
  commitment and codebook losses and FlexiCodec's distillation term as `forward_features`
  returns them. Quantizer dropout picks the number of RVQ stages per item, as in the
  original's training.

Writes OUT/checkpoint/: flexicodec-mini.safetensors + flexicodec-mini_config.yaml (the release
layout, without semantic_model.*), sensevoice.pt (the SenseVoice state dict) and am.mvn;
OUT/train_state.pt holds what --resume needs. See README.md in this folder.

Usage (from the repository root):
  python tools/train/flexicodec/train.py --data ../shared/data/speech-train \
      --out out/flexicodec-mini --max-minutes 90
"""

import argparse
import copy
import glob
import importlib.util
import os
import random
import sys
import time
import types

if __name__ == "__main__":
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from torch import nn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(HERE, "flexicodec-mini.yaml")
NAME = "flexicodec-mini"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# crop sampler, losses, LR schedule and audio loading are shared with the Vocos recipe
common = _load("sotto_train_vocos", os.path.join(HERE, "..", "vocos", "train.py"))


def build_codec(cfg):
    """FlexiCodec(**cfg['model']) without loading SenseVoice, then the two sizes the
    constructor hard-codes (semantic width, ConvNeXt intermediate width) rebuilt from the
    package's own classes; the semantic model is a SenseVoiceSmall of cfg['sensevoice']."""
    import flexicodec.modeling_flexicodec as mf
    from flexicodec.cnn import ConvNeXtBlock
    from flexicodec.customized_sensevoice.model import SenseVoiceSmall
    from flexicodec.dac_layers import WNConv1d
    from flexicodec.model_blocks.mimi.transformer import QueryTokenAggregator

    kw = copy.deepcopy(cfg["model"])
    saved = mf.AutoModel
    mf.AutoModel = lambda *a, **k: types.SimpleNamespace(model=nn.Module())
    try:
        model = mf.FlexiCodec(**kw)
    finally:
        mf.AutoModel = saved
    ssl, inter = cfg["sizes"]["ssl_dim"], cfg["sizes"]["convnext_intermediate"]
    dim, layers = kw["convnext_dim"], kw["convnext_layers"]
    model.ssl_dim = ssl
    model.convnext_encoder = nn.Sequential(
        WNConv1d(ssl, dim, kernel_size=1),
        *[ConvNeXtBlock(dim=dim, intermediate_dim=inter, is_causal=kw["is_causal"])
          for _ in range(layers)])
    model.convnext_decoder = nn.Sequential(
        *[ConvNeXtBlock(dim=dim, intermediate_dim=inter, is_causal=kw["is_causal"])
          for _ in range(layers)],
        WNConv1d(dim, model.dac_bn_dim, kernel_size=1))
    model.semantic_aggregator = QueryTokenAggregator(
        dim=kw["agg_transformer_dim"], in_out_dim=ssl,
        num_heads=kw["agg_transformer_num_heads"], num_layers=kw["agg_transformer_num_layers"],
        dim_feedforward=kw["agg_transformer_dim_feedforward"], causal=False,
        context_frames=kw["transformer_context_frames"], use_mean_pooling_init=True)
    sv = cfg["sensevoice"]
    model.semantic_model = SenseVoiceSmall(
        encoder="SenseVoiceEncoderSmall", input_size=sv["input_size"], vocab_size=40,
        encoder_conf=dict(output_size=sv["output_size"], attention_heads=sv["attention_heads"],
                          linear_units=sv["linear_units"], num_blocks=sv["num_blocks"],
                          tp_blocks=sv["tp_blocks"], kernel_size=sv["kernel_size"],
                          sanm_shfit=sv["sanm_shfit"], normalize_before=True))
    if sv["output_size"] != ssl:
        raise SystemExit("sensevoice.output_size must equal sizes.ssl_dim")
    # the release freezes the semantic model; here it is trained
    for p in model.semantic_model.parameters():
        p.requires_grad = True
    return model


class Frontend:
    """FunASR's WavFrontend (80-bin Kaldi fbank, 25/10 ms, hamming, dither 0) + LFR 7/6, then
    CMVN as (x + shift) * scale: what the SDK computes from a model file's sensevoice.cmvn.*."""

    def __init__(self):
        from funasr.frontends.wav_frontend import WavFrontend, apply_lfr
        self.fb = WavFrontend(cmvn_file=None, n_mels=80, frame_length=25, frame_shift=10,
                              lfr_m=1, lfr_n=1, dither=0.0)
        self.apply_lfr = apply_lfr
        self.shift = None
        self.scale = None

    def lfr(self, wave):
        fb = self.fb(wave[None], [wave.numel()])[0][0]
        return self.apply_lfr(fb, 7, 6)

    def fit(self, waves):
        x = torch.cat([self.lfr(w) for w in waves])
        self.shift = -x.mean(0)
        self.scale = 1.0 / (x.std(0) + 1e-3)

    def __call__(self, batch):
        with torch.no_grad():
            return torch.stack([(self.lfr(w) + self.shift) * self.scale for w in batch])


def write_mvn(path, shift, scale):
    """am.mvn in SenseVoice's text form, written by tools/convert/sensevoice.py (which reads
    it back when converting)."""
    conv = _load("sotto_convert_sensevoice", os.path.join(HERE, "..", "..", "convert",
                                                          "sensevoice.py"))
    conv.write_cmvn(path, shift, scale)


def semantic_features(model, feats):
    """FlexiCodec's _extract_semantic_code for SenseVoice, with gradients."""
    sm = model.semantic_model
    lens = torch.full((feats.shape[0],), feats.shape[1], dtype=torch.long)
    x, lens = sm.prepend_inputs(feats, lens)
    _, _, hidden, _ = sm.encoder(x, lens, extract_hidden=True)
    return hidden[:, 4:].transpose(1, 2)


def save_checkpoint(model, cfg, frontend, directory):
    from safetensors.torch import save_file
    os.makedirs(directory, exist_ok=True)
    sd = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()
          if not k.startswith("semantic_model.")}
    save_file(sd, os.path.join(directory, f"{NAME}.safetensors"))
    with open(os.path.join(directory, f"{NAME}_config.yaml"), "w") as f:
        yaml.safe_dump({"model": cfg["model"], "sizes": cfg["sizes"],
                        "sensevoice": cfg["sensevoice"]}, f, sort_keys=False)
    torch.save({k: v.detach().clone() for k, v in model.semantic_model.state_dict().items()},
               os.path.join(directory, "sensevoice.pt"))
    write_mvn(os.path.join(directory, "am.mvn"), frontend.shift.numpy(),
              frontend.scale.numpy())


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=DEFAULT_CONFIG)
    ap.add_argument("--data", required=True, help="training audio folder (flac/wav)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--log", help="log file (default: <out>/train.log)")
    ap.add_argument("--max-minutes", type=float, default=90.0)
    ap.add_argument("--max-steps", type=int, default=100000,
                    help="step budget; the LR schedule ends here")
    ap.add_argument("--stop-step", type=int,
                    help="stop at this step without changing the schedule set by --max-steps")
    ap.add_argument("--save-minutes", type=float, default=5.0)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--max-files", type=int, help="use only the first N files (smoke tests)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)  # FlexiCodec draws its merge threshold and bypass with `random`
    with open(args.config) as f:
        cfg = yaml.safe_load(f)
    tc = cfg["train"]
    sr = tc["sample_rate"]
    batch_size = args.batch_size or tc["batch_size"]
    dev = torch.device(args.device)

    os.makedirs(args.out, exist_ok=True)
    log_file = open(args.log or os.path.join(args.out, "train.log"), "a", buffering=1)

    def log(msg):
        line = time.strftime("%Y-%m-%d %H:%M:%S ") + msg
        print(line, flush=True)
        log_file.write(line + "\n")

    files = sorted(glob.glob(os.path.join(args.data, "*.flac"))
                   + glob.glob(os.path.join(args.data, "*.wav")))
    if args.max_files:
        files = files[: args.max_files]
    if len(files) < 2:
        raise SystemExit(f"no training audio in {args.data}")
    n_val = min(tc["val_files"], len(files) // 2)
    stride = max(1, len(files) // max(1, n_val))
    val_idx = set(range(0, stride * n_val, stride))
    t0 = time.time()
    waves = [common.load_audio(p, sr) for p in files]
    train_w = [w for i, w in enumerate(waves) if i not in val_idx]
    val_w = [w for i, w in enumerate(waves) if i in val_idx]
    frontend = Frontend()
    frontend.fit([w / max(float(w.abs().max()), 1e-8) * 0.5 for w in train_w])
    hours = sum(len(w) for w in train_w) / sr / 3600
    log(f"data: {len(train_w)} train files ({hours:.2f} h), {len(val_w)} held out; loaded and "
        f"CMVN measured in {time.time() - t0:.1f} s")
    log(f"host: {common.cpu_name()}, torch {torch.__version__}, device {dev}, "
        f"{torch.get_num_threads()} thread(s); args: {' '.join(sys.argv[1:])}")

    model = build_codec(cfg).to(dev)
    n_all = sum(p.numel() for p in model.parameters())
    n_sv = sum(p.numel() for p in model.semantic_model.parameters())
    log(f"model: {n_all / 1e6:.2f} M parameters ({n_sv / 1e6:.2f} M in the semantic encoder)")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=tc["learning_rate"], betas=tuple(tc["betas"]),
                            weight_decay=tc["weight_decay"])
    mel_loss = common.MultiScaleMelLoss(sr, tc["mel_scales"]).to(dev)
    stft_loss = common.MultiResolutionSTFTLoss(tc["stft_resolutions"]).to(dev)

    seg, gain, floor = tc["segment_samples"], tc["gain_db"], tc["min_rms_db"]
    sampler = common.CropSampler(train_w, seg, gain, floor, args.seed)
    val_sampler = common.CropSampler(val_w, seg, gain, floor, args.seed + 1)
    val_batch = val_sampler.batch(8)
    val_feats = frontend(val_batch)

    step = 0
    state_path = os.path.join(args.out, "train_state.pt")
    if args.resume and os.path.exists(state_path):
        st = torch.load(state_path, map_location="cpu", weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        sampler.set_state(st["sampler"])
        torch.set_rng_state(st["torch_rng"])
        random.setstate(st["py_rng"])
        step = st["step"]
        log(f"resumed at step {step}")

    lo_rate, hi_rate = tc["merge_rate"]
    full_rate = sr / float(np.prod(cfg["model"]["encoder_rates"]))

    def draw_threshold(sem):
        """A merge threshold for this batch: the quantile of its adjacent-frame similarities
        that leaves a fraction r / full_rate of boundaries, r drawn uniformly in merge_rate."""
        with torch.no_grad():
            h = model._downsample_semantic_features(sem.detach()).transpose(1, 2)
            sim = torch.nn.functional.cosine_similarity(h[:, :-1], h[:, 1:], dim=2).flatten()
        q = random.uniform(lo_rate, hi_rate) / full_rate
        return 1.0 if q >= 1.0 else float(torch.quantile(sim.float().cpu(), q))

    def run(y, feats, n_q=None, threshold=None):
        sem = semantic_features(model, feats.to(dev))
        sem = sem.contiguous()
        if threshold is None and model.training:
            t = draw_threshold(sem)
            model.similarity_threshold_lower = model.similarity_threshold_upper = t
        out = model.forward_features(y[:, None].to(dev), sr, semantic_repr=sem,
                                     alignment_hidden=sem, n_quantizers=n_q,
                                     manual_threshold=threshold)
        return out

    def validate():
        """Mel loss of the held-out crops at the default threshold with every RVQ stage."""
        model.eval()
        with torch.no_grad():
            out = run(val_batch, val_feats, n_q=cfg["model"]["n_codebooks"] + 1,
                      threshold=cfg["model"]["similarity_threshold"])
            v = float(mel_loss(out["audio"][:, 0].cpu(), val_batch))
            rate = float(out["token_ratio"]) * sr / float(np.prod(cfg["model"]["encoder_rates"]))
        model.manual_threshold = None
        model.train()
        return v, rate

    def save():
        save_checkpoint(model, cfg, frontend, os.path.join(args.out, "checkpoint"))
        st = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
              "sampler": sampler.state(), "torch_rng": torch.get_rng_state(),
              "py_rng": random.getstate()}
        torch.save(st, state_path + ".tmp")
        os.replace(state_path + ".tmp", state_path)

    model.train()
    start = time.time()
    last_save = start
    acc, acc_n, win_start = {}, 0, time.time()
    stop_reason = "max steps"
    stop_step = min(args.max_steps, args.stop_step or args.max_steps)
    while step < stop_step:
        if time.time() - start > args.max_minutes * 60:
            stop_reason = "time budget"
            break
        lr = tc["learning_rate"] * common.lr_factor(step, tc["warmup_steps"], args.max_steps,
                                                    tc["min_lr_ratio"])
        for g in opt.param_groups:
            g["lr"] = lr
        y = sampler.batch(batch_size)
        feats = frontend(y)
        model.manual_threshold = None
        model.training = True
        out = run(y, feats)
        y_hat = out["audio"][:, 0]
        y = y.to(dev)
        l_mel = mel_loss(y_hat, y)
        l_sc, l_mag = stft_loss(y_hat, y)
        commit, cb = out["vq/commitment_loss"], out["vq/codebook_loss"]
        distill = out["distill_loss"]
        loss = (tc["mel_loss_weight"] * l_mel + tc["stft_loss_weight"] * (l_sc + l_mag)
                + tc["commitment_weight"] * commit + tc["codebook_weight"] * cb
                + tc["distill_weight"] * distill)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(params, tc["grad_clip"])
        opt.step()
        step += 1
        terms = {"loss": float(loss), "mel": float(l_mel), "sc": float(l_sc),
                 "mag": float(l_mag), "commit": float(commit), "cb": float(cb),
                 "distill": float(distill), "gnorm": float(gn),
                 "thr": model.similarity_threshold_lower,
                 "rate": float(out["token_ratio"]) * full_rate}
        for k, v in terms.items():
            acc[k] = acc.get(k, 0.0) + v
        acc_n += 1
        if step % args.log_every == 0:
            el = time.time() - win_start
            log(f"step {step} lr {lr:.2e} " + " ".join(f"{k} {v / acc_n:.4f}"
                                                    for k, v in acc.items())
                + f" | {el / acc_n:.2f} s/step")
            acc, acc_n, win_start = {}, 0, time.time()
        if time.time() - last_save > args.save_minutes * 60:
            v, r = validate()
            save()
            last_save = time.time()
            log(f"step {step}: val mel {v:.4f} at threshold "
                f"{cfg['model']['similarity_threshold']} ({r:.2f} Hz); checkpoint saved")
    v, r = validate()
    save()
    log(f"stopped ({stop_reason}) at step {step} after {(time.time() - start) / 60:.1f} min; "
        f"val mel {v:.4f} ({r:.2f} Hz); checkpoint in {os.path.join(args.out, 'checkpoint')}")


if __name__ == "__main__":
    main()
