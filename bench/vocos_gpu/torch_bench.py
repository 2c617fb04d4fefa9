"""PyTorch side of the GPU Vocos benchmark (bench/vocos_gpu): the official `vocos` model
classes on the same GPU, the same random weights and the same features as
sotto_bench_vocos_gpu, the same three measurements, per arithmetic mode.

Model: the checkpoint folder (config.yaml + pytorch_model.bin) the SDK's GGUF was converted
from. With the whole official package importable (vocos and what its __init__ imports:
torchaudio, encodec, huggingface_hub) it is loaded the official way (`Vocos.from_hparams`,
then `load_state_dict`) and `Vocos.decode` is timed. Where only the package's own files are
there (a machine without network, where `encodec` is missing), the script imports the
official modules `vocos.models` and `vocos.heads` without running the package's __init__,
builds `VocosBackbone` and `ISTFTHead` from config.yaml and loads their parts of the state
dict (strict); the timed call is then `head(backbone(features))`, which is what
`Vocos.decode` runs. The JSON says which loader ran. Carry the package with
`bench/vocos_gpu/run.sh --pack-python DIR` on a machine that has it, then pass
`--vocos-path DIR` (or put DIR on PYTHONPATH).

Modes: "f32" sets torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
to False (PyTorch's own default lets cuDNN convolutions use TF32); "tf32" sets both to True.

Timing: every timed call starts from features on the host and ends with the samples on the
host (.cpu()), with torch.cuda.synchronize() before the clock starts and after it stops,
exactly like the SDK's calls, which upload, compute and download.
  offline  decode one sequence of --seconds; one warm-up, then --reps timed calls;
  batch    decode --batch sequences at once ([B, C, T]; sequence i is the base features
           rotated by 7·i frames, as in the SDK bench); one warm-up, then --reps timed calls;
  stream   naive exact streaming, as bench/vocos/torch_bench.py does it on the CPU: features
           arrive --step frames at a time (copied into a device buffer); after each push the
           script emits the samples the SDK releases at that point by re-running the model on
           the frames they depend on plus the receptive field on each side (27 frames for
           vocos-mel-24khz), nothing cached between calls; per-push latency over the pushes
           that release samples. An untimed first run checks the stream against the offline
           output.

Nothing here has run on a GPU yet: no figure from it is recorded anywhere.

usage: torch_bench.py CHECKPOINT_DIR [--seconds S] [--batch N] [--step N] [--reps N]
                      [--stream-reps N] [--modes f32,tf32] [--device cuda|cpu] [--json]
                      [--check-sdk FILE] [--vocos-path DIR]
"""

import argparse
import importlib.util
import json
import math
import os
import platform
import sys
import time
import types

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from bench_common import final_samples, make_features, percentile, stream_window  # noqa: E402


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="folder with config.yaml and pytorch_model.bin")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--step", type=int, default=4)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--stream-reps", type=int, default=3)
    ap.add_argument("--modes", default="f32,tf32")
    ap.add_argument("--device", default="cuda", help="cuda (the benchmark) or cpu (a dry run)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--check-sdk", metavar="FILE",
                    help="raw float32 f32 offline output of sotto_bench_vocos_gpu --dump: "
                         "report its max-abs difference from PyTorch's f32 offline output")
    ap.add_argument("--vocos-path", metavar="DIR",
                    help="a folder holding the vocos package (and optionally encodec), put "
                         "first on sys.path")
    return ap.parse_args()


def import_vocos():
    """Returns ("package", Vocos class) or ("modules", None) after importing vocos.models and
    vocos.heads; exits with instructions when the package's files are nowhere."""
    try:
        from vocos.pretrained import Vocos
        return "package", Vocos
    except ImportError as e:
        first_error = e
    for name in [m for m in sys.modules if m == "vocos" or m.startswith("vocos.")]:
        del sys.modules[name]
    spec = importlib.util.find_spec("vocos")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "torch_bench.py: the official `vocos` package is not importable "
            f"({first_error}).\nOn a machine without network, carry it: run "
            "`bench/vocos_gpu/run.sh --pack-python DIR` where vocos is installed (it copies "
            "the pure-Python packages vocos, encodec and gguf into DIR), take DIR along, and "
            "pass `--vocos-path DIR` here (or `--py DIR` to run.sh / tools/gpu-check.sh); or "
            "install the wheel: pip install --no-index --no-deps vocos-0.1.0-py3-none-any.whl")
    pkg = types.ModuleType("vocos")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__file__ = spec.origin
    sys.modules["vocos"] = pkg
    import vocos.heads  # noqa: F401
    import vocos.models  # noqa: F401
    print(f"torch_bench.py: the vocos package's __init__ does not import ({first_error}); "
          "using its modules vocos.models and vocos.heads directly", file=sys.stderr)
    return "modules", None


def package_version():
    try:
        import importlib.metadata
        return importlib.metadata.version("vocos")
    except Exception:  # noqa: BLE001 - a carried package folder has no metadata
        return "unknown (package folder without metadata)"


def load_model(torch, directory, device):
    """(decode function, loader name, model objects) for the checkpoint folder."""
    import yaml

    loader, Vocos = import_vocos()
    cfg_path = os.path.join(directory, "config.yaml")
    sd = torch.load(os.path.join(directory, "pytorch_model.bin"), map_location="cpu")
    if loader == "package":
        model = Vocos.from_hparams(cfg_path)
        model.load_state_dict(sd)
        model.eval().to(device)
        return model.decode, "Vocos.from_hparams + load_state_dict", model
    import vocos.heads
    import vocos.models

    with open(cfg_path) as f:
        cfg = yaml.safe_load(f)
    bb, hd = cfg["backbone"], cfg["head"]
    if not bb["class_path"].endswith("VocosBackbone") or not hd["class_path"].endswith("ISTFTHead"):
        raise SystemExit("torch_bench.py: only VocosBackbone + ISTFTHead checkpoints are "
                         "supported without the whole package")
    backbone = vocos.models.VocosBackbone(**bb["init_args"])
    head = vocos.heads.ISTFTHead(**hd["init_args"])
    for prefix, module in (("backbone.", backbone), ("head.", head)):
        part = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        module.load_state_dict(part)
        module.eval().to(device)

    def decode(features):
        return head(backbone(features))

    return decode, "VocosBackbone + ISTFTHead (vocos.models, vocos.heads)", (backbone, head)




class Streamer:
    """Naive exact streaming: after each push, re-run the model on the frames the newly final
    samples depend on plus R frames of context per side (bench/vocos/torch_bench.py)."""

    def __init__(self, torch, decode, feats_host, n_layers, n_fft, hop, device, sync):
        self.torch = torch
        self.decode = decode
        self.host = feats_host  # [1, C, T] on the host
        self.T = feats_host.shape[-1]
        self.n_fft, self.hop = n_fft, hop
        self.R = 3 * (n_layers + 1)
        self.dev = torch.zeros_like(feats_host, device=device)
        self.sync = sync

    def final_samples(self, n):
        """Output samples no future frame can change once n frames are known."""
        return final_samples(n, self.T, self.R, self.hop, self.n_fft)

    def emit(self, s0, s1, n):
        hop = self.hop
        a, b = stream_window(s0, s1, n, self.R, hop, self.n_fft)
        y = self.decode(self.dev[:, :, a:b + 1])
        return y[0, s0 - a * hop:s1 - a * hop].cpu()

    def run(self, step, lat_ms=None, keep=False):
        """One pass; returns (seconds, pushes, pieces or None)."""
        pieces = [] if keep else None
        total, done, n, pushes = 0.0, 0, 0, 0
        while True:
            last = n >= self.T
            self.sync()
            t0 = time.perf_counter()
            if not last:
                k = min(step, self.T - n)
                self.dev[:, :, n:n + k].copy_(self.host[:, :, n:n + k])
                n += k
                pushes += 1
            target = self.hop * (self.T - 1) if last else self.final_samples(n)
            y = None
            if target > done:
                y = self.emit(done, target, n)
            self.sync()
            dt = time.perf_counter() - t0
            total += dt
            if y is not None:
                if y.shape[-1] != target - done:
                    raise SystemExit(f"torch_bench.py: internal error: got {y.shape[-1]} "
                                     f"samples, wanted {target - done}")
                if lat_ms is not None and not last:
                    lat_ms.append(1e3 * dt)
                if keep:
                    pieces.append(y.clone())
                done = target
            if last:
                break
        return total, pushes, pieces


def main():
    args = parse_args()
    if args.vocos_path:
        sys.path.insert(0, os.path.abspath(args.vocos_path))
    # The official package must not be shadowed by a file of ours: import torch first, then
    # the model (the script's own folder holds no vocos module).
    import torch

    modes = [m for m in args.modes.split(",") if m]
    if any(m not in ("f32", "tf32") for m in modes):
        raise SystemExit("torch_bench.py: --modes takes f32, tf32 or both")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("torch_bench.py: torch sees no CUDA device (torch "
                         f"{torch.__version__}, built for CUDA {torch.version.cuda})")

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    decode, loader, model = load_model(torch, args.checkpoint, device)
    backbone = model.backbone if hasattr(model, "backbone") else model[0]
    head = model.head if hasattr(model, "head") else model[1]
    istft = head.istft
    if istft.padding != "center":
        raise SystemExit("torch_bench.py: only 'center' ISTFT heads are supported")
    hop, n_fft = istft.hop_length, istft.n_fft
    dim = backbone.embed.in_channels
    n_layers = len(backbone.convnext)
    sr = 24000
    try:
        import yaml
        with open(os.path.join(args.checkpoint, "config.yaml")) as f:
            sr = yaml.safe_load(f)["feature_extractor"]["init_args"].get("sample_rate", sr)
    except Exception:  # noqa: BLE001 - the default is the released config's
        pass
    T = int(math.ceil(args.seconds * sr / hop)) + 1
    audio_samples = hop * (T - 1)
    audio_s = audio_samples / sr
    base = make_features(T, dim)
    feats = torch.from_numpy(base.T.copy()).unsqueeze(0)  # [1, C, T], host
    batch = torch.from_numpy(np.stack([np.roll(base, -((7 * i) % T), axis=0).T
                                       for i in range(args.batch)]).copy())  # [B, C, T]
    streamer = Streamer(torch, decode, feats, n_layers, n_fft, hop, device, sync)

    result = {
        "bench": "vocos_gpu", "side": "pytorch", "checkpoint": args.checkpoint,
        "loader": loader,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "cuda": torch.version.cuda,
                     "cudnn": (torch.backends.cudnn.version()
                               if torch.backends.cudnn.is_available() else None),
                     "vocos": package_version(), "numpy": np.__version__},
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"),
        "sample_rate": sr, "hop": hop, "feature_dim": dim, "frames": T,
        "audio_samples": audio_samples, "audio_seconds": audio_s, "batch": args.batch,
        "step": args.step, "reps": args.reps, "stream_reps": args.stream_reps,
        "receptive_frames_per_side": streamer.R, "runs": [],
    }

    def timed(x_host, reps):
        times, y = [], None
        for i in range(reps + 1):  # the first is a warm-up
            sync()
            t0 = time.perf_counter()
            y = decode(x_host.to(device)).cpu()
            sync()
            if i:
                times.append(time.perf_counter() - t0)
        times.sort()
        return times, y

    offline_f32 = None
    with torch.inference_mode():
        for mode in modes:
            tf32 = mode == "tf32"
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            run = {"mode": mode}
            times, y = timed(feats, args.reps)
            ref = y[0].clone()
            if ref.shape[-1] != audio_samples:
                raise SystemExit(f"torch_bench.py: offline output has {ref.shape[-1]} samples, "
                                 f"expected {audio_samples}")
            if mode == "f32":
                offline_f32 = ref
            med = float(np.median(times))
            run["offline"] = {"best_s": times[0], "median_s": med, "xrt_median": audio_s / med,
                              "rtf_median": med / audio_s}
            times, yb = timed(batch, args.reps)
            med = float(np.median(times))
            # Item 0 of the batch is the base sequence: it must match the offline output.
            run["batch"] = {"best_s": times[0], "median_s": med,
                            "xrt_median": args.batch * audio_s / med,
                            "item_max_abs_vs_offline": float((yb[0] - ref).abs().max())}
            if not args.json:
                print(f"  {mode}: offline {run['offline']['xrt_median']:.1f} x RT, batch "
                      f"{run['batch']['xrt_median']:.1f} x RT", file=sys.stderr, flush=True)
            _, pushes, pieces = streamer.run(args.step, keep=True)
            s = torch.cat(pieces)
            diff = float((s - ref).abs().max()) if s.shape == ref.shape else -1.0
            runs, lat = [], []
            for _ in range(args.stream_reps):
                secs, pushes, _ = streamer.run(args.step, lat_ms=lat)
                runs.append(secs)
            lat.sort()
            med = float(np.median(runs))
            run["stream"] = [{
                "graph": 0, "pushes": pushes, "timed_pushes": len(lat),
                "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
                "max_ms": lat[-1] if lat else 0.0,
                "mean_ms": float(np.mean(lat)) if lat else 0.0,
                "run_median_s": med, "xrt_median": audio_s / med,
                "max_abs_vs_offline": diff,
                "frames_per_call_approx": args.step + 2 * streamer.R + n_fft // hop,
            }]
            if not args.json:
                print(f"  {mode}: stream {args.step}: p50 {run['stream'][0]['p50_ms']:.3f} ms",
                      file=sys.stderr, flush=True)
            result["runs"].append(run)

    if args.check_sdk and offline_f32 is not None:
        sdk = torch.from_numpy(np.fromfile(args.check_sdk, dtype=np.float32))
        n = min(sdk.shape[0], offline_f32.shape[0])
        result["sdk_check"] = {
            "sdk_samples": int(sdk.shape[0]), "torch_samples": int(offline_f32.shape[0]),
            "max_abs_diff": float((sdk[:n] - offline_f32[:n]).abs().max()) if n else -1.0,
            "ref_max_abs": float(offline_f32.abs().max()),
        }

    if args.json:
        print(json.dumps(result))
        return
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), vocos "
          f"{result['versions']['vocos']}, loader: {loader}, device: {result['device']}")
    print(f"{T} frames = {audio_s:.3f} s per sequence, batch {args.batch}, stream pushes of "
          f"{args.step} frames")
    for run in result["runs"]:
        o, b, s = run["offline"], run["batch"], run["stream"][0]
        print(f"{run['mode']:<6} offline {o['xrt_median']:10.1f} x RT   batch "
              f"{b['xrt_median']:10.1f} x RT   stream p50 {s['p50_ms']:.3f} ms p99 "
              f"{s['p99_ms']:.3f} ms (stream vs offline max-abs {s['max_abs_vs_offline']:.2g})")
    if "sdk_check" in result:
        c = result["sdk_check"]
        print(f"SDK f32 offline vs PyTorch f32 offline: max-abs {c['max_abs_diff']:.3g} "
              f"({c['sdk_samples']} vs {c['torch_samples']} samples)")


if __name__ == "__main__":
    sys.exit(main())
