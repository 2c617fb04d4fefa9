"""Evaluation of a trained small FlexiCodec (tools/train/flexicodec/train.py) on held-out speech.

Two parts:

1. `scores` (default): for each clip of --speech, `sotto compare` (the SDK's own command: the
   shipped GGUF through the same C code as any converted checkpoint) at each target frame rate
   (--rates, default 12.5, 8.3 and 6.25 Hz: rate control picks the merge threshold per clip),
   with Opus (libopus, VOIP, 16 kHz) at bitrates matching Sotto's and at 6 kbps. Prints a
   Markdown table of the means over the clips (bitrate actually spent, STOI, log-mel L1,
   SI-SDR) and writes every row to --json.
2. `parity` (with --checkpoint): the PyTorch model (the official classes as train.py builds
   them, in eval mode) against the SDK on the same clips, at one fixed merge threshold with
   every RVQ stage: each clip is cut to a length where the official code and the SDK see the
   same frames (a multiple of 1280 samples whose SenseVoice frame count matches), encoded and
   decoded by both; reports group counts (equal or not), the waveform difference (max-abs,
   SNR of the SDK output against PyTorch's) and STOI of each.
3. `segments` (with --segments S ...): `sotto encode --segment S` against whole-utterance
   encoding of each clip at --segment-rate: groups, STOI of both, SNR between the decodes.

Usage (from the repository root):
  python tools/train/flexicodec/evaluate.py --model samples/models/flexicodec-mini.gguf \
      [--checkpoint out/flexicodec-mini/checkpoint] [--speech ../shared/data/speech] \
      [--sotto build/apps/sotto] [--json out/flexicodec-mini/eval.json]
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

if __name__ == "__main__":
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def clips(folder):
    return sorted(glob.glob(os.path.join(folder, "*.flac")) + glob.glob(os.path.join(folder, "*.wav")))


def compare(sotto, model, clip, rate, opus, threads):
    cmd = [sotto, "compare", clip, "-m", model, "--rate", f"{rate:g}", "--json", "-t", str(threads),
           "--opus-bitrates", ",".join(str(int(b)) for b in opus) if opus else "none"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def scores(args):
    files = clips(args.speech)
    out = {"model": os.path.basename(args.model), "clips": len(files), "rates": {}}
    lines = ["| setting | bit/s | STOI | log-mel L1 | SI-SDR (dB) |", "|---|---|---|---|---|"]
    for rate in args.rates:
        # pass 1: Sotto alone, for its mean bitrate at this rate
        rows = [compare(args.sotto, args.model, c, rate, None, args.threads)["rows"][0]
                for c in files]
        mean_bps = float(np.mean([r["bitrate_bps"] for r in rows]))
        opus_rates = [max(500, int(round(mean_bps / 100.0)) * 100), 6000]
        # pass 2: Opus at Sotto's mean bitrate and at 6 kbps (Sotto rows again: deterministic)
        per = {"sotto": [], **{f"opus {b}": [] for b in opus_rates}}
        for c in files:
            j = compare(args.sotto, args.model, c, rate, opus_rates, args.threads)
            per["sotto"].append(j["rows"][0])
            for b, r in zip(opus_rates, j["rows"][1:]):
                per[f"opus {b}"].append(r)
        out["rates"][f"{rate:g}"] = per
        for name, rs in per.items():
            m = {k: float(np.mean([r[k] for r in rs]))
                 for k in ("bitrate_bps", "stoi", "log_mel_l1", "si_sdr_db")}
            label = (f"Sotto flexicodec-mini, --rate {rate:g} "
                     f"({np.mean([float(r['setting'].split(',')[-1].split()[0]) for r in rs]):.2f}"
                     f" groups/s)") if name == "sotto" else \
                f"Opus, target {name.split()[1]} bit/s (next to --rate {rate:g})"
            lines.append(f"| {label} | {m['bitrate_bps']:.0f} | {m['stoi']:.4f} | "
                         f"{m['log_mel_l1']:.4f} | {m['si_sdr_db']:.2f} |")
    print(f"{len(files)} clips from {args.speech}, means:")
    print("\n".join(lines))
    return out


def load_torch(ckpt_dir):
    import torch
    import yaml
    from safetensors.torch import load_file

    train = _load_train()
    with open(os.path.join(ckpt_dir, "flexicodec-mini_config.yaml")) as f:
        cfg = yaml.safe_load(f)
    model = train.build_codec(cfg)
    missing, unexpected = model.load_state_dict(
        load_file(os.path.join(ckpt_dir, "flexicodec-mini.safetensors")), strict=False)
    if unexpected or [k for k in missing if not k.startswith("semantic_model.")]:
        raise SystemExit(f"checkpoint mismatch: missing {missing[:4]}, unexpected {unexpected[:4]}")
    model.semantic_model.load_state_dict(torch.load(os.path.join(ckpt_dir, "sensevoice.pt")))
    fe = train.Frontend()
    from funasr.frontends.wav_frontend import load_cmvn
    cmvn = load_cmvn(os.path.join(ckpt_dir, "am.mvn"))
    fe.shift, fe.scale = cmvn[0], cmvn[1]
    return model.eval(), fe, cfg, train


def _load_train():
    import importlib.util
    spec = importlib.util.spec_from_file_location("sotto_train_flexicodec",
                                                  os.path.join(HERE, "train.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def aligned_length(n):
    """A length L <= n that both sides encode the same way: L = 1280 k - 16, which
    sotto_codec_encode_file zero-pads to 1280 k samples (k frames decode to 1280 k - 16
    samples), k chosen so that 1280 k samples give exactly k SenseVoice frames (fbank 25/10 ms,
    LFR 6, 4/3 downsampling) and the official code truncates nothing. Returns (L, k)."""
    for k in range(n // 1280, 0, -1):
        t_fb = 1 + (1280 * k - 400) // 160
        t_lfr = -(-t_fb // 6)
        if int(t_lfr / 1.33333) == k and 1280 * k - 16 <= n:
            return 1280 * k - 16, k
    return 0, 0


def parity(args):
    import soundfile as sf
    import torch
    from pystoi import stoi

    torch.set_num_threads(args.threads)
    model, fe, cfg, train = load_torch(args.checkpoint)
    n_q = cfg["model"]["n_codebooks"] + 1
    rows = []
    tmp = tempfile.mkdtemp()
    for c in clips(args.speech):
        x = train.common.load_audio(c, 16000)
        L, k = aligned_length(len(x))
        x = x[:L].contiguous()
        xp = torch.nn.functional.pad(x, (0, 1280 * k - L))  # what the SDK encodes
        with torch.no_grad():
            feats = fe(xp[None])
            sem = train.semantic_features(model, feats)
            out = model.forward_features(xp[None, None], 16000, semantic_repr=sem,
                                         alignment_hidden=sem, n_quantizers=n_q,
                                         manual_threshold=args.threshold, encode_only=True)
            g_ref = int(out["token_lengths"].shape[-1])
            y_ref = model.decode_from_codes(out["semantic_codes"], out["acoustic_codes"],
                                            out["token_lengths"])[0, 0, :L].numpy()
        wav = os.path.join(tmp, "in.wav")
        sf.write(wav, x.numpy(), 16000, subtype="FLOAT")
        enc, dec = os.path.join(tmp, "x.sotto"), os.path.join(tmp, "y.wav")
        r = subprocess.run([args.sotto, "encode", wav, "-o", enc, "-m", args.model,
                            "--threshold", f"{args.threshold}", "--json"],
                           capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(r.stderr)
        g_sdk = int(json.loads(r.stdout)["groups"])
        r = subprocess.run([args.sotto, "decode", enc, "-o", dec, "-m", args.model, "-q"],
                           capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(r.stderr)
        y, _ = sf.read(dec, dtype="float32")
        n = min(len(y), len(y_ref))
        d = y[:n] - y_ref[:n]
        snr = 10 * np.log10(np.sum(y_ref[:n] ** 2) / max(np.sum(d ** 2), 1e-20))
        xs = x.numpy()[:n]
        rows.append(dict(clip=os.path.basename(c), samples=L, groups_torch=g_ref,
                         groups_sdk=g_sdk, max_abs=float(np.abs(d).max()), snr_db=float(snr),
                         stoi_torch=float(stoi(xs, y_ref[:n], 16000)),
                         stoi_sdk=float(stoi(xs, y[:n], 16000))))
        print(f"{rows[-1]['clip']}: groups {g_ref}/{g_sdk}, max-abs {rows[-1]['max_abs']:.2e}, "
              f"SNR {snr:.1f} dB, STOI {rows[-1]['stoi_torch']:.4f} / {rows[-1]['stoi_sdk']:.4f}")
    same = sum(r["groups_torch"] == r["groups_sdk"] for r in rows)
    print(f"parity at threshold {args.threshold}: {same}/{len(rows)} clips with equal group "
          f"counts; SDK vs PyTorch waveform SNR median {np.median([r['snr_db'] for r in rows]):.1f}"
          f" dB (min {min(r['snr_db'] for r in rows):.1f}); mean STOI PyTorch "
          f"{np.mean([r['stoi_torch'] for r in rows]):.4f}, SDK "
          f"{np.mean([r['stoi_sdk'] for r in rows]):.4f}")
    return rows


def segments(args):
    """Segmented encoding (--segment S) against whole-utterance encoding on every clip at a
    target rate: groups, STOI of each decode against the original, and the SNR of the
    segmented decode against the whole one (how far the cuts move the waveform)."""
    import soundfile as sf
    from pystoi import stoi

    train = _load_train()
    tmp = tempfile.mkdtemp()
    res = {}
    for seg in args.segments:
        rows = []
        for c in clips(args.speech):
            x = train.common.load_audio(c, 16000).numpy()
            wav = os.path.join(tmp, "in.wav")
            sf.write(wav, x, 16000, subtype="FLOAT")
            outs = {}
            for s in (0, seg):
                enc, dec = os.path.join(tmp, f"s{s}.sotto"), os.path.join(tmp, f"s{s}.wav")
                r = subprocess.run([args.sotto, "encode", wav, "-o", enc, "-m", args.model,
                                    "--rate", f"{args.segment_rate:g}", "--segment", f"{s:g}",
                                    "--json"], capture_output=True, text=True)
                if r.returncode:
                    raise SystemExit(r.stderr)
                j = json.loads(r.stdout)
                r = subprocess.run([args.sotto, "decode", enc, "-o", dec, "-m", args.model, "-q",
                                    "--float"], capture_output=True, text=True)
                if r.returncode:
                    raise SystemExit(r.stderr)
                y, _ = sf.read(dec, dtype="float32")
                outs[s] = (j, y)
            (j0, y0), (js, ys) = outs[0], outs[seg]
            d = ys - y0
            rows.append(dict(clip=os.path.basename(c), seconds=len(x) / 16000,
                             segments=js["segments"], groups_whole=j0["groups"],
                             groups_segmented=js["groups"],
                             snr_db=float(10 * np.log10(np.sum(y0 ** 2) /
                                                         max(np.sum(d ** 2), 1e-20))),
                             stoi_whole=float(stoi(x, y0, 16000)),
                             stoi_segmented=float(stoi(x, ys, 16000))))
        res[f"{seg:g}"] = rows
        cut = [r for r in rows if r["segments"] > 1]
        print(f"--segment {seg:g} at --rate {args.segment_rate:g}: {len(cut)}/{len(rows)} clips "
              f"cut; groups whole {sum(r['groups_whole'] for r in rows)}, segmented "
              f"{sum(r['groups_segmented'] for r in rows)}; mean STOI whole "
              f"{np.mean([r['stoi_whole'] for r in rows]):.4f}, segmented "
              f"{np.mean([r['stoi_segmented'] for r in rows]):.4f}; segmented vs whole SNR "
              f"median {np.median([r['snr_db'] for r in cut]) if cut else float('nan'):.1f} dB")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="the converted GGUF")
    ap.add_argument("--checkpoint", help="checkpoint folder (train.py's OUT/checkpoint): also "
                    "check the SDK against the PyTorch model")
    ap.add_argument("--speech", default=os.path.join(REPO, "..", "shared", "data", "speech"))
    ap.add_argument("--sotto", default=os.path.join(REPO, "build", "apps", "sotto"))
    ap.add_argument("--rates", type=float, nargs="+", default=[12.5, 8.3, 6.25])
    ap.add_argument("--threshold", type=float, default=0.7,
                    help="fixed merge threshold of the parity check")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-scores", action="store_true")
    ap.add_argument("--segments", type=float, nargs="*", default=[],
                    help="also compare --segment S encodes with whole-utterance ones")
    ap.add_argument("--segment-rate", type=float, default=8.3)
    ap.add_argument("--json", help="write everything measured here")
    args = ap.parse_args()
    res = {}
    if args.checkpoint:
        res["parity"] = parity(args)
    if args.segments:
        res["segments"] = segments(args)
    if not args.skip_scores:
        res["scores"] = scores(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
