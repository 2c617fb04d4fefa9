"""Training loop for a small Vocos-mel vocoder, built from the official `vocos` package
modules (MelSpectrogramFeatures, VocosBackbone, ISTFTHead) and trained with a multi-scale
log-mel L1 loss plus a multi-resolution STFT loss, optionally followed by the official
discriminators (MultiPeriodDiscriminator, MultiResolutionDiscriminator) with hinge and
feature-matching losses.

Checkpoints are written in the official release layout (config.yaml + pytorch_model.bin),
so tools/convert/vocos.py converts them like a released model; train_state.pt beside them
holds what --resume needs. See README.md in this folder for the recipe and results.

Usage (from the repository root):
  python tools/train/vocos/train.py --data ../shared/data/speech-train \
      --out out/vocos-16k-mini --log out/vocos-16k-mini/train.log --max-minutes 80
"""

import argparse
import glob
import math
import os
import platform
import sys
import time

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio
import yaml
from vocos.pretrained import Vocos, instantiate_class

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(HERE, "vocos-16k-mini.yaml")


def build_model(model_cfg):
    """Vocos from the official-layout sections of a config (no weights loaded)."""
    return Vocos(
        feature_extractor=instantiate_class((), model_cfg["feature_extractor"]),
        backbone=instantiate_class((), model_cfg["backbone"]),
        head=instantiate_class((), model_cfg["head"]),
    )


def save_official(model, model_cfg, directory):
    """Writes config.yaml + pytorch_model.bin, each replaced atomically."""
    os.makedirs(directory, exist_ok=True)
    cfg_path = os.path.join(directory, "config.yaml")
    bin_path = os.path.join(directory, "pytorch_model.bin")
    with open(cfg_path + ".tmp", "w") as f:
        yaml.safe_dump(model_cfg, f, sort_keys=False)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save(state, bin_path + ".tmp")
    os.replace(cfg_path + ".tmp", cfg_path)
    os.replace(bin_path + ".tmp", bin_path)


def load_audio(path, sample_rate):
    """Mono float32 tensor at sample_rate."""
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = torch.from_numpy(x.mean(axis=1).copy())
    if sr != sample_rate:
        x = torchaudio.functional.resample(x, sr, sample_rate)
    return x


class CropSampler:
    """Random fixed-length crops from in-memory utterances, drawn with a seeded generator.

    A crop starts at a uniformly drawn sample of the whole corpus (so long files are drawn
    proportionally more), is redrawn (up to 20 times) while its RMS is below min_rms_db, and
    is then peak-normalised to a random level. Utterances shorter than a crop are zero-padded."""

    def __init__(self, waves, segment, gain_db, min_rms_db, seed):
        self.waves = waves
        self.segment = segment
        self.gain_db = gain_db
        self.min_rms = 10.0 ** (min_rms_db / 20.0)
        self.rng = np.random.default_rng(seed)
        lengths = np.array([max(1, len(w) - segment + 1) for w in waves], dtype=np.float64)
        self.p = lengths / lengths.sum()

    def crop(self):
        for _ in range(20):
            i = self.rng.choice(len(self.waves), p=self.p)
            w = self.waves[i]
            if len(w) <= self.segment:
                c = F.pad(w, (0, self.segment - len(w)))
            else:
                a = int(self.rng.integers(0, len(w) - self.segment + 1))
                c = w[a : a + self.segment]
            peak = float(c.abs().max())
            if float(c.square().mean().sqrt()) >= self.min_rms:
                break
        level = 10.0 ** (self.rng.uniform(*self.gain_db) / 20.0)
        return c * (level / max(peak, 1e-8))

    def batch(self, n):
        return torch.stack([self.crop() for _ in range(n)])

    def state(self):
        return self.rng.bit_generator.state

    def set_state(self, s):
        self.rng.bit_generator.state = s


class MultiScaleMelLoss(torch.nn.Module):
    """Mean over scales of L1 between natural-log mel magnitudes (torchaudio, power 1)."""

    def __init__(self, sample_rate, scales):
        super().__init__()
        self.mels = torch.nn.ModuleList(
            torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate, n_fft=n, hop_length=h, n_mels=m, power=1, center=True
            )
            for n, h, m in scales
        )

    def forward(self, y_hat, y):
        total = 0.0
        for mel in self.mels:
            total = total + F.l1_loss(
                torch.log(mel(y_hat).clamp(min=1e-5)), torch.log(mel(y).clamp(min=1e-5))
            )
        return total / len(self.mels)


class MultiResolutionSTFTLoss(torch.nn.Module):
    """Spectral convergence + log-magnitude L1, averaged over resolutions."""

    def __init__(self, resolutions):
        super().__init__()
        self.resolutions = resolutions
        for i, (_, _, win) in enumerate(resolutions):
            self.register_buffer(f"window{i}", torch.hann_window(win), persistent=False)

    def forward(self, y_hat, y):
        sc_total, mag_total = 0.0, 0.0
        for i, (n_fft, hop, win) in enumerate(self.resolutions):
            w = getattr(self, f"window{i}")
            s_hat = torch.stft(y_hat, n_fft, hop, win, w, return_complex=True).abs()
            s = torch.stft(y, n_fft, hop, win, w, return_complex=True).abs()
            s_hat = s_hat.clamp(min=1e-7)
            s = s.clamp(min=1e-7)
            sc_total = sc_total + torch.linalg.norm(s - s_hat) / torch.linalg.norm(s)
            mag_total = mag_total + F.l1_loss(torch.log(s_hat), torch.log(s))
        n = len(self.resolutions)
        return sc_total / n, mag_total / n


def lr_factor(step, warmup, max_steps, min_ratio):
    """Linear warm-up, then cosine decay to min_ratio at max_steps (flat afterwards)."""
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=DEFAULT_CONFIG, help="recipe yaml (model + train sections)")
    ap.add_argument("--data", required=True,
                    help="folder of training audio (flac/wav), e.g. ../shared/data/speech-train")
    ap.add_argument("--out", required=True,
                    help="output folder: checkpoint/ (official layout) + train_state.pt")
    ap.add_argument("--log", help="log file (default: <out>/train.log)")
    ap.add_argument("--max-minutes", type=float, default=80.0, help="wall-clock budget of this run")
    ap.add_argument("--max-steps", type=int, default=100000,
                    help="step budget; the LR schedule ends here")
    ap.add_argument("--stop-step", type=int,
                    help="stop at this step without changing the schedule set by --max-steps "
                         "(reproduces a run that the time budget stopped early)")
    ap.add_argument("--save-minutes", type=float, default=5.0, help="checkpoint interval")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--batch-size", type=int, help="override train.batch_size")
    ap.add_argument("--max-files", type=int, help="use only the first N files (smoke tests)")
    ap.add_argument("--resume", action="store_true", help="continue from <out>/train_state.pt")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(args.config) as f:
        cfg = yaml.safe_load(f)
    model_cfg, tc = cfg["model"], cfg["train"]
    batch_size = args.batch_size or tc["batch_size"]
    sr = tc["sample_rate"]
    if model_cfg["feature_extractor"]["init_args"].get("sample_rate") != sr:
        raise SystemExit("train.sample_rate differs from the feature extractor's sample_rate")

    os.makedirs(args.out, exist_ok=True)
    log_path = args.log or os.path.join(args.out, "train.log")
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    log_file = open(log_path, "a", buffering=1)

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
    waves = [load_audio(p, sr) for p in files]
    train_w = [w for i, w in enumerate(waves) if i not in val_idx]
    val_w = [w for i, w in enumerate(waves) if i in val_idx]
    hours = sum(len(w) for w in train_w) / sr / 3600
    log(f"data: {len(train_w)} train files ({hours:.2f} h), {len(val_w)} held out; "
        f"loaded in {time.time() - t0:.1f} s")
    log(f"host: {cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
        f"args: {' '.join(sys.argv[1:])}")

    model = build_model(model_cfg)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"model: {n_params / 1e6:.2f} M trainable parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=tc["learning_rate"], betas=tuple(tc["betas"]),
                            weight_decay=tc["weight_decay"])
    mel_loss = MultiScaleMelLoss(sr, tc["mel_scales"])
    stft_loss = MultiResolutionSTFTLoss(tc["stft_resolutions"])

    use_gan = tc.get("gan_after", -1) >= 0
    if use_gan:
        from vocos.discriminators import MultiPeriodDiscriminator, MultiResolutionDiscriminator
        from vocos.loss import DiscriminatorLoss, FeatureMatchingLoss, GeneratorLoss

        mpd, mrd = MultiPeriodDiscriminator(), MultiResolutionDiscriminator()
        disc_params = list(mpd.parameters()) + list(mrd.parameters())
        opt_d = torch.optim.AdamW(disc_params, lr=tc["gan_learning_rate"], betas=(0.8, 0.9))
        d_loss, g_loss, fm_loss = DiscriminatorLoss(), GeneratorLoss(), FeatureMatchingLoss()

    seg, gain, floor = tc["segment_samples"], tc["gain_db"], tc["min_rms_db"]
    sampler = CropSampler(train_w, seg, gain, floor, args.seed)
    val_sampler = CropSampler(val_w, seg, gain, floor, args.seed + 1)
    val_batch = val_sampler.batch(16)

    step = 0
    state_path = os.path.join(args.out, "train_state.pt")
    if args.resume and os.path.exists(state_path):
        st = torch.load(state_path, map_location="cpu", weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        if use_gan and "mpd" in st:
            mpd.load_state_dict(st["mpd"])
            mrd.load_state_dict(st["mrd"])
            opt_d.load_state_dict(st["opt_d"])
        sampler.set_state(st["sampler"])
        torch.set_rng_state(st["torch_rng"])
        step = st["step"]
        log(f"resumed at step {step}")

    def forward(y):
        with torch.no_grad():
            feats = model.feature_extractor(y)
        return model.head(model.backbone(feats))

    def validate():
        model.eval()
        with torch.no_grad():
            y_hat = forward(val_batch)
            v = float(mel_loss(y_hat, val_batch))
        model.train()
        return v

    def save():
        save_official(model, model_cfg, os.path.join(args.out, "checkpoint"))
        st = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
              "sampler": sampler.state(), "torch_rng": torch.get_rng_state()}
        if use_gan:
            st.update(mpd=mpd.state_dict(), mrd=mrd.state_dict(), opt_d=opt_d.state_dict())
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
        lr = tc["learning_rate"] * lr_factor(step, tc["warmup_steps"], args.max_steps,
                                             tc["min_lr_ratio"])
        for g in opt.param_groups:
            g["lr"] = lr
        y = sampler.batch(batch_size)
        y_hat = forward(y)
        n = min(y.shape[-1], y_hat.shape[-1])
        y, y_hat = y[..., :n], y_hat[..., :n]
        l_mel = mel_loss(y_hat, y)
        l_sc, l_mag = stft_loss(y_hat, y)
        terms = {"mel": l_mel.item(), "sc": l_sc.item(), "mag": l_mag.item()}
        gan_on = use_gan and step >= tc["gan_after"]
        if gan_on:
            opt_d.zero_grad(set_to_none=True)
            r_mp, g_mp, _, _ = mpd(y=y, y_hat=y_hat.detach())
            r_mr, g_mr, _, _ = mrd(y=y, y_hat=y_hat.detach())
            loss_d = d_loss(r_mp, g_mp)[0] + tc["gan_mrd_coeff"] * d_loss(r_mr, g_mr)[0]
            loss_d.backward()
            opt_d.step()
            _, g_mp, f_r_mp, f_g_mp = mpd(y=y, y_hat=y_hat)
            _, g_mr, f_r_mr, f_g_mr = mrd(y=y, y_hat=y_hat)
            adv = g_loss(g_mp)[0] + tc["gan_mrd_coeff"] * g_loss(g_mr)[0]
            fm = fm_loss(f_r_mp, f_g_mp) + tc["gan_mrd_coeff"] * fm_loss(f_r_mr, f_g_mr)
            loss = (adv + fm + tc["gan_mel_coeff"] * (tc["mel_loss_weight"] * l_mel
                    + tc["stft_loss_weight"] * (l_sc + l_mag))).squeeze()
            terms.update(d=loss_d.item(), adv=adv.item(), fm=fm.item())
        else:
            loss = tc["mel_loss_weight"] * l_mel + tc["stft_loss_weight"] * (l_sc + l_mag)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc["grad_clip"])
        opt.step()
        step += 1
        terms["loss"] = loss.item()
        for k, v in terms.items():
            acc[k] = acc.get(k, 0.0) + v
        acc_n += 1
        if step % args.log_every == 0 or step == 1:
            now = time.time()
            parts = " ".join(f"{k} {v / acc_n:.4f}" for k, v in acc.items())
            log(f"step {step} t {now - start:.0f}s lr {lr:.2e} {parts} "
                f"({(now - win_start) / acc_n:.2f} s/step)")
            acc, acc_n, win_start = {}, 0, now
        if time.time() - last_save > args.save_minutes * 60:
            save()
            last_save = time.time()
            log(f"saved step {step}; val mel L1 {validate():.4f}")
    save()
    log(f"done ({stop_reason}): step {step}, {(time.time() - start) / 60:.1f} min, "
        f"val mel L1 {validate():.4f}; checkpoint in {os.path.join(args.out, 'checkpoint')}")


if __name__ == "__main__":
    main()
