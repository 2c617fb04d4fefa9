"""PyTorch side of the Vocos benchmark: the official `vocos` model classes, the same features as
sotto_bench_vocos (same generator), offline and naive exact streaming, per thread count.

Model: the checkpoint folder (config.yaml + pytorch_model.bin) that the SDK's GGUF was
converted from, loaded the way `Vocos.from_pretrained` loads a local folder
(tools/golden/vocos_make_checkpoint.py `load_official`). Only `Vocos.decode` (backbone + ISTFT
head, features in) is timed, in float32 under torch.inference_mode.

Offline: decode all T frames at once; best and median of --reps runs after one warm-up.

Naive streaming (what a user of the official package does to stream exactly): frames arrive
in chunks; after each chunk the script emits every output sample that no future frame can
change, the same samples the SDK releases at that point. Each backbone output frame depends
on R = 3 * (num_layers + 1) input frames on either side (k = 7 convs: the embedding and one per
ConvNeXt block), and an output sample of the "center" ISTFT on the frames whose window covers
it. So the new samples [s0, s1) need frames [f_lo, f_hi]; the script re-runs decode on input
frames [f_lo - R, f_hi + R] (clipped to what exists) and keeps the samples [s0, s1) of its
output. Nothing is cached between calls. A call that would emit no sample (the first R frames
or so) is skipped rather than run. After the last chunk, a final call emits the tail using the
true right edge. The first streaming run of each chunk size is untimed and checks that the
concatenated stream equals the offline output (max-abs difference reported).

Speed is "x real time" = audio seconds / compute seconds; RTF is the inverse.

usage: torch_bench.py CHECKPOINT_DIR [--seconds S] [--threads 1,2] [--chunks 1,4,16]
                      [--reps N] [--stream-reps N] [--json] [--check-sdk FILE]
"""

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import resource
import sys
import time

# `vocos` must be the official package: import it before anything can shadow it.
import numpy as np
import torch
import vocos  # noqa: F401
import vocos.pretrained  # noqa: F401

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from bench_common import final_samples, make_features, percentile, stream_window  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE_CHECKPOINT = os.path.join(HERE, "..", "..", "tools", "golden", "vocos_make_checkpoint.py")


def peak_rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod



def blas_info():
    """What torch computes with: its BLAS/LAPACK, oneDNN, OpenMP and CPU capability lines."""
    cfg = torch.__config__.show()
    lines = []
    for ln in cfg.splitlines():
        ln = ln.strip().lstrip("- ")
        if ln.startswith("Build settings:"):
            kv = dict(x.strip().split("=", 1) for x in ln[len("Build settings:"):].split(",")
                      if "=" in x)
            lines.append(", ".join(f"{k}={kv[k]}" for k in ("BLAS_INFO", "LAPACK_INFO",
                                                            "USE_MKLDNN", "USE_OPENMP")
                                   if k in kv))
        elif any(w in ln for w in ("Math Kernel Library", "MKL-DNN", "oneDNN", "OpenBLAS",
                                   "OpenMP", "CPU capability")):
            lines.append(ln)
    par = [ln.strip() for ln in torch.__config__.parallel_info().splitlines()
           if "parallel backend" in ln]
    return lines + par


class Streamer:
    """Naive exact streaming over an official Vocos model (see the module docstring)."""

    def __init__(self, model, feats):
        head = model.head
        istft = head.istft
        if istft.padding != "center":
            raise SystemExit("torch_bench.py: only 'center' ISTFT heads are supported")
        self.model = model
        self.feats = feats  # [1, C, T]
        self.T = feats.shape[-1]
        self.hop = istft.hop_length
        self.n_fft = istft.n_fft
        self.R = 3 * (len(model.backbone.convnext) + 1)

    def final_samples(self, n):
        """Output samples no future frame can change once n frames are known."""
        return final_samples(n, self.T, self.R, self.hop, self.n_fft)

    def emit(self, s0, s1, n):
        """Samples [s0, s1) of the offline output, computed from the first n frames."""
        hop = self.hop
        a, b = stream_window(s0, s1, n, self.R, hop, self.n_fft)
        y = self.model.decode(self.feats[:, :, a:b + 1])
        return y[0, s0 - a * hop:s1 - a * hop]

    def run(self, chunk, step_ms=None, keep=False):
        """One streaming pass; returns (seconds, n_calls, pieces or None)."""
        pieces = [] if keep else None
        total = 0.0
        done = 0
        calls = 0
        n = 0
        while True:
            last = n >= self.T
            if not last:
                n = min(self.T, n + chunk)
            # The final call (after the last chunk) releases the tail, like the SDK's flush.
            target = self.hop * (self.T - 1) if last else self.final_samples(n)
            if target > done:
                t0 = time.perf_counter()
                y = self.emit(done, target, n)
                dt = time.perf_counter() - t0
                if y.shape[-1] != target - done:
                    raise SystemExit(f"torch_bench.py: internal error: got {y.shape[-1]} "
                                     f"samples, wanted {target - done}")
                total += dt
                calls += 1
                if step_ms is not None:
                    step_ms.append(1e3 * dt)
                if keep:
                    pieces.append(y.clone())
                done = target
            if last:
                break
        return total, calls, pieces


def parse_list(s):
    return [int(x) for x in s.split(",") if x]



def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="folder with config.yaml and pytorch_model.bin")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=parse_list, default=[1, 2])
    ap.add_argument("--chunks", type=parse_list, default=[1, 4, 16])
    ap.add_argument("--reps", type=int, default=5, help="timed offline runs")
    ap.add_argument("--stream-reps", type=int, default=1,
                    help="timed streaming runs per chunk size (the untimed check run comes "
                         "first)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--check-sdk", metavar="FILE",
                    help="raw float32 offline output of sotto_bench_vocos --dump: report its "
                         "max-abs difference from the PyTorch offline output")
    args = ap.parse_args()

    rss_import = peak_rss_kb()
    torch.set_num_interop_threads(1)
    mk = load_module(MAKE_CHECKPOINT, "sotto_vocos_make_checkpoint")
    model = mk.load_official(args.checkpoint)
    model.eval()
    fe = model.feature_extractor
    sr = fe.mel_spec.sample_rate if hasattr(fe, "mel_spec") else 24000
    hop = model.head.istft.hop_length
    dim = model.backbone.embed.in_channels
    T = int(math.ceil(args.seconds * sr / hop)) + 1
    feats = torch.from_numpy(make_features(T, dim).T.copy()).unsqueeze(0)  # [1, C, T]
    streamer = Streamer(model, feats)
    audio_samples = hop * (T - 1)
    audio_s = audio_samples / sr
    rss_model = peak_rss_kb()

    blas = blas_info()
    result = {
        "bench": "vocos", "side": "pytorch",
        "checkpoint": args.checkpoint,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "vocos": importlib.metadata.version("vocos"), "numpy": np.__version__},
        "blas": blas,
        "sample_rate": sr, "hop": hop, "feature_dim": dim, "frames": T,
        "audio_samples": audio_samples, "audio_seconds": audio_s,
        "receptive_frames_per_side": streamer.R,
        "offline_reps": args.reps, "stream_reps": args.stream_reps,
        "rss_after_import_kb": rss_import, "rss_after_model_kb": rss_model,
        "runs": [],
    }
    if not args.json:
        print(f"torch {torch.__version__}, vocos {result['versions']['vocos']}, "
              f"numpy {np.__version__}, python {platform.python_version()}")
        for ln in blas:
            print("  " + ln)
        print(f"{T} frames = {audio_s:.3f} s of audio; naive streaming re-runs decode on "
              f"chunk + {streamer.R} frames of context per side + ISTFT overlap")

    offline_ref = None
    with torch.inference_mode():
        for nt in args.threads:
            torch.set_num_threads(nt)
            run = {"threads": nt, "torch_threads": torch.get_num_threads()}
            y = model.decode(feats)[0]  # warm-up
            if offline_ref is None:
                offline_ref = y.clone()
                if y.shape[-1] != audio_samples:
                    raise SystemExit(f"torch_bench.py: offline output has {y.shape[-1]} "
                                     f"samples, expected {audio_samples}")
            times = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                model.decode(feats)
                times.append(time.perf_counter() - t0)
            times.sort()
            med = float(np.median(times))
            run["offline"] = {"best_s": times[0], "median_s": med,
                              "xrt_best": audio_s / times[0], "xrt_median": audio_s / med,
                              "rtf_median": med / audio_s}
            run["stream"] = []
            for chunk in args.chunks:
                _, calls, pieces = streamer.run(chunk, keep=True)
                s = torch.cat(pieces)
                diff = (float((s - offline_ref).abs().max()) if s.shape == offline_ref.shape
                        else -1.0)
                runs, steps = [], []
                for _ in range(args.stream_reps):
                    secs, calls, _ = streamer.run(chunk, step_ms=steps)
                    runs.append(secs)
                steps.sort()
                med = float(np.median(runs))
                window = chunk + 2 * streamer.R + model.head.istft.n_fft // hop
                run["stream"].append({
                    "chunk": chunk, "calls": calls, "best_s": min(runs), "median_s": med,
                    "xrt_median": audio_s / med, "rtf_median": med / audio_s,
                    "step_p50_ms": percentile(steps, 50), "step_p99_ms": percentile(steps, 99),
                    "step_max_ms": steps[-1], "frames_per_call_approx": window,
                    "samples": int(s.shape[-1]), "max_abs_diff_vs_offline": diff,
                })
                if not args.json:
                    print(f"  threads {nt} chunk {chunk}: {audio_s / med:.2f} x RT", flush=True)
            run["peak_rss_kb"] = peak_rss_kb()
            result["runs"].append(run)

    if args.check_sdk:
        sdk = torch.from_numpy(np.fromfile(args.check_sdk, dtype=np.float32))
        n = min(sdk.shape[0], offline_ref.shape[0])
        result["sdk_check"] = {
            "sdk_samples": int(sdk.shape[0]), "torch_samples": int(offline_ref.shape[0]),
            "max_abs_diff": float((sdk[:n] - offline_ref[:n]).abs().max()) if n else -1.0,
            "ref_max_abs": float(offline_ref.abs().max()),
        }
    result["peak_rss_kb"] = peak_rss_kb()

    if args.json:
        print(json.dumps(result))
        return
    print(f"\n{'threads':<8}{'case':<16}{'x RT':>10}{'RTF':>10}{'step p50':>10}{'step p99':>10}"
          f"{'stream-off':>12}")
    for run in result["runs"]:
        o = run["offline"]
        print(f"{run['threads']:<8}{'offline best':<16}{o['xrt_best']:>10.2f}"
              f"{o['best_s'] / audio_s:>10.4f}")
        print(f"{run['threads']:<8}{'offline median':<16}{o['xrt_median']:>10.2f}"
              f"{o['rtf_median']:>10.4f}")
        for s in run["stream"]:
            print(f"{run['threads']:<8}{'stream ' + str(s['chunk']):<16}{s['xrt_median']:>10.2f}"
                  f"{s['rtf_median']:>10.4f}{s['step_p50_ms']:>10.3f}{s['step_p99_ms']:>10.3f}"
                  f"{s['max_abs_diff_vs_offline']:>12.2g}")
    if "sdk_check" in result:
        c = result["sdk_check"]
        print(f"\nSDK offline output vs PyTorch: max-abs {c['max_abs_diff']:.3g} "
              f"({c['sdk_samples']} vs {c['torch_samples']} samples)")
    print(f"peak RSS {result['peak_rss_kb'] / 1024:.1f} MiB (after import "
          f"{rss_import / 1024:.1f} MiB, after model {rss_model / 1024:.1f} MiB)")


if __name__ == "__main__":
    sys.exit(main())
