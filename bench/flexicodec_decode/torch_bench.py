"""PyTorch side of the FlexiCodec decode benchmark: the official `flexicodec` package's
`FlexiCodec.decode_from_codes` on the same codes as sotto_bench_flexicodec_decode (same
generator), per thread count.

Model: the checkpoint (`<name>.safetensors` + `<name>_config.yaml`) that the SDK's GGUF was
converted from, loaded the way tools/golden/flexicodec_make_checkpoint.py `load_official`
does: `FlexiCodec(**config)` with SenseVoice replaced by an empty stub (it is not used to
decode), then `load_state_dict(strict=False)` as the official infer.py does. Decoding runs
in float32 under torch.inference_mode with `torch.set_num_threads(N)` and one inter-op
thread.

Timed: one `decode_from_codes(semantic [1, 1, G], acoustic [1, n_stages, G], lengths [1, G])`
call over the whole utterance (FSQ decode, ConvNeXt decoder, RVQ decode, expansion by the
group lengths, bottleneck transformer, DAC decoder), exactly what the SDK's push + flush
computes. Best and median of --reps runs after one untimed warm-up run per thread count.

Speed is "x real time" = audio seconds / compute seconds; RTF is the inverse. Peak RSS is
getrusage's maximum of this process: the interpreter, `import torch` and the official
package, the whole official model (encoder side included: it is what the official loading
path builds), the loaded state dict and the decode.

With --device cuda[:N] the model and the codes are moved to that GPU before the clock runs
(the output stays there), matmuls and cuDNN convolutions are kept off TF32 (the SDK's CUDA
path computes in plain f32), and torch.cuda.synchronize() runs before each timer starts and
before it stops. The thread count then only sets torch's CPU threads. Also reported: the
device's name, torch.cuda.max_memory_allocated after loading the model and over the decodes
(tensors only, not the CUDA context or the caching allocator's reserve), and the driver
version where nvidia-smi gives it. A missing device stops the script before it loads
anything. Nothing here has run on a GPU yet.

usage: torch_bench.py CHECKPOINT_DIR [--config 12hz_v1] [--seconds S] [--threads 1,2]
                      [--reps N] [--stages N] [--device cpu|cuda[:N]] [--json]
                      [--check-sdk LABEL=FILE ...]
"""

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "..", "tools", "golden")
# The official package is `flexicodec`; tools/golden holds a flexicodec.py of its own (a
# fixture writer). Import the package first, and never put tools/golden on the path.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.abspath(GOLDEN)]
# The official package prints notices on stdout while it is imported and builds the model;
# they go to stderr until the model is loaded, so stdout carries only this script's output.
STDOUT, sys.stdout = sys.stdout, sys.stderr

import numpy as np  # noqa: E402
import torch  # noqa: E402
import flexicodec  # noqa: E402,F401
import flexicodec.modeling_flexicodec  # noqa: E402,F401


def peak_rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_codes(T, max_len, fsq_size, codebook_size, n_stages):
    """The generator of flexicodec_decode_bench.c: a 32-bit LCG, one step per value, high bits:
    per group length = 1 + (s >> 29) % max_len (the last one clamped to the frames left),
    fsq = (s >> 17) % fsq_size, then n_stages RVQ codes (s >> 20) % codebook_size; until T
    frames are covered. Returns (lengths [G], fsq [G], rvq [G][n_stages]) as int64 arrays."""
    s = 12345

    def nxt():
        nonlocal s
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        return s

    lengths, fsq, rvq = [], [], []
    t = 0
    while t < T:
        n = min(1 + (nxt() >> 29) % max_len, T - t)
        lengths.append(n)
        fsq.append((nxt() >> 17) % fsq_size)
        rvq.append([(nxt() >> 20) % codebook_size for _ in range(n_stages)])
        t += n
    return (np.array(lengths, dtype=np.int64), np.array(fsq, dtype=np.int64),
            np.array(rvq, dtype=np.int64).reshape(len(lengths), n_stages))


def blas_info():
    """What torch computes with: its BLAS/LAPACK, oneDNN, OpenMP and CPU capability lines
    (as bench/vocos/torch_bench.py reports them)."""
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


def parse_list(s):
    return [int(x) for x in s.split(",") if x]


def cuda_device(spec):
    """The torch.device of --device; exits with the reason when it is not there."""
    try:
        dev = torch.device(spec)
    except RuntimeError as e:
        raise SystemExit(f"torch_bench.py: --device {spec}: {e}")
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise SystemExit(f"torch_bench.py: --device takes cpu or cuda[:N], not {spec}")
    if dev.index is None:
        dev = torch.device("cuda", 0)
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if dev.index >= n:
        raise SystemExit(f"torch_bench.py: --device {spec}: torch sees "
                         f"{n or 'no'} CUDA device{'s' if n != 1 else ''} (torch "
                         f"{torch.__version__}, built for CUDA {torch.version.cuda})")
    return dev


def driver_version():
    """The NVIDIA driver version from nvidia-smi (the same for every GPU), or None."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=20, check=True).stdout.split()
        return out[0] if out else None
    except (OSError, subprocess.SubprocessError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="folder with <config>.safetensors and "
                                       "<config>_config.yaml")
    ap.add_argument("--config", default="12hz_v1",
                    help="checkpoint name / config of flexicodec_make_checkpoint.py "
                         "(default 12hz_v1, the full released configuration)")
    ap.add_argument("--seconds", type=float, default=10.0,
                    help="audio duration: round(S * 12.5) frames (default 10)")
    ap.add_argument("--threads", type=parse_list, default=[1, 2])
    ap.add_argument("--reps", type=int, default=5, help="timed decodes per thread count")
    ap.add_argument("--stages", type=int, default=7,
                    help="RVQ stages per group (default 7; at most the model's)")
    ap.add_argument("--device", default="cpu",
                    help="cpu (default) or cuda[:N]: run the model and the codes on that GPU")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--check-sdk", metavar="LABEL=FILE", action="append", default=[],
                    help="raw float32 output of sotto_bench_flexicodec_decode --dump: report "
                         "its max-abs difference from the PyTorch output (repeatable)")
    args = ap.parse_args()
    if args.reps < 1 or args.stages < 0 or not args.threads:
        raise SystemExit("torch_bench.py: bad option value (see --help)")

    rss_import = peak_rss_kb()
    torch.set_num_interop_threads(1)
    device = cuda_device(args.device)
    gpu = device.type == "cuda"

    def sync():
        if gpu:
            torch.cuda.synchronize(device)

    mk = load_module(os.path.join(GOLDEN, "flexicodec_make_checkpoint.py"),
                     "sotto_flexicodec_make_checkpoint")
    t0 = time.perf_counter()
    model = mk.load_official(args.checkpoint, args.config)
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        model.to(device)
        sync()
    load_s = time.perf_counter() - t0
    model.eval()
    rss_model = peak_rss_kb()
    gpu_mem_model = torch.cuda.max_memory_allocated(device) if gpu else None
    sys.stdout = STDOUT

    sr = int(model.sample_rate)
    hop = int(np.prod(model.dac.decoder_rates))
    max_len = int(model.max_tokens_per_group or 8)  # None: no limit; the bitstream's is 8
    fsq_size = int(model.semantic_vq.fsq.codebook_size)
    n_q = int(model.dac.quantizer.n_codebooks)
    cb = int(model.dac.quantizer.codebook_size)
    n_stages = min(args.stages, n_q)
    T = max(1, int(round(args.seconds * sr / hop)))
    lengths, fsq, rvq = make_codes(T, max_len, fsq_size, cb, n_stages)
    G = len(lengths)
    sem_t = torch.from_numpy(fsq).view(1, 1, G).to(device)
    ac_t = torch.from_numpy(rvq.T.copy()).view(1, n_stages, G).to(device) if n_stages else None
    len_t = torch.from_numpy(lengths).view(1, G).to(device)

    blas = blas_info()
    result = {
        "bench": "flexicodec_decode", "side": "pytorch",
        "checkpoint": args.checkpoint, "config": args.config,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "flexicodec": importlib.metadata.version("flexicodec"),
                     "numpy": np.__version__},
        "blas": blas,
        "sample_rate": sr, "hop": hop, "frames": T, "groups": G, "stages": n_stages,
        "model_stages": n_q, "fsq_size": fsq_size, "codebook_size": cb,
        "max_group_length": max_len, "reps": args.reps, "load_s": load_s,
        "model_parameters": sum(p.numel() for p in model.parameters()),
        "rss_after_import_kb": rss_import, "rss_after_model_kb": rss_model,
        "device": "cpu", "runs": [],
    }
    if gpu:
        result.update({
            "device": str(device), "device_name": torch.cuda.get_device_name(device),
            "cuda": torch.version.cuda, "driver": driver_version(),
            "cudnn": (torch.backends.cudnn.version()
                      if torch.backends.cudnn.is_available() else None),
            "tf32": False, "gpu_mem_after_model_bytes": gpu_mem_model,
        })
    if not args.json:
        print(f"torch {torch.__version__}, flexicodec {result['versions']['flexicodec']}, "
              f"numpy {np.__version__}, python {platform.python_version()}")
        for ln in blas:
            print("  " + ln)
        if gpu:
            print(f"device: {result['device_name']} ({device}), CUDA {result['cuda']}, "
                  f"driver {result['driver'] or '?'}, TF32 off")
        print(f"{T} frames in {G} groups, {n_stages} of {n_q} RVQ stages; model loaded in "
              f"{load_s:.1f} s ({result['model_parameters'] / 1e6:.1f} M parameters)",
              flush=True)

    ref = None
    with torch.inference_mode():
        for nt in args.threads:
            torch.set_num_threads(nt)
            run = {"threads": nt, "torch_threads": torch.get_num_threads()}
            sync()
            t0 = time.perf_counter()
            y = model.decode_from_codes(sem_t, ac_t, len_t)[0, 0]  # warm-up
            sync()
            run["warmup_s"] = time.perf_counter() - t0
            if ref is None:
                ref = y.float().cpu().clone()
                if y.shape[-1] != hop * T - 16:
                    print(f"torch_bench.py: note: {y.shape[-1]} samples for {T} frames "
                          f"(hop * T - 16 = {hop * T - 16})", file=sys.stderr)
            times = []
            for _ in range(args.reps):
                sync()
                t0 = time.perf_counter()
                model.decode_from_codes(sem_t, ac_t, len_t)
                sync()
                times.append(time.perf_counter() - t0)
            times.sort()
            med = float(np.median(times))
            audio_s = ref.shape[-1] / sr
            run.update({"best_s": times[0], "median_s": med, "xrt_best": audio_s / times[0],
                        "xrt_median": audio_s / med, "rtf_median": med / audio_s,
                        "peak_rss_kb": peak_rss_kb()})
            if gpu:
                run["gpu_max_mem_bytes"] = torch.cuda.max_memory_allocated(device)
            result["runs"].append(run)
            if not args.json:
                print(f"  threads {nt}: {audio_s / med:.2f} x RT", flush=True)

    result["audio_samples"] = int(ref.shape[-1])
    result["audio_seconds"] = ref.shape[-1] / sr
    result["ref_max_abs"] = float(ref.abs().max())
    result["sdk_check"] = []
    for item in args.check_sdk:
        label, _, path = item.partition("=")
        if not path:
            label, path = os.path.basename(item), item
        sdk = torch.from_numpy(np.fromfile(path, dtype=np.float32))
        n = min(sdk.shape[0], ref.shape[0])
        d = (sdk[:n] - ref[:n]).double()
        result["sdk_check"].append({
            "label": label, "sdk_samples": int(sdk.shape[0]),
            "torch_samples": int(ref.shape[0]),
            "max_abs_diff": float(d.abs().max()) if n else -1.0,
            "nmse": float(d.pow(2).sum() / ref[:n].double().pow(2).sum()) if n else -1.0,
        })
    result["peak_rss_kb"] = peak_rss_kb()
    if gpu:
        result["gpu_max_mem_bytes"] = torch.cuda.max_memory_allocated(device)

    if args.json:
        print(json.dumps(result))
        return 0
    audio_s = result["audio_seconds"]
    print(f"\n{result['audio_samples']} samples = {audio_s:.3f} s of audio")
    print(f"{'threads':<8}{'warm-up s':>10}{'best s':>10}{'median s':>10}{'x RT':>10}"
          f"{'RTF':>10}")
    for run in result["runs"]:
        print(f"{run['threads']:<8}{run['warmup_s']:>10.3f}{run['best_s']:>10.3f}"
              f"{run['median_s']:>10.3f}{run['xrt_median']:>10.2f}{run['rtf_median']:>10.4f}")
    for c in result["sdk_check"]:
        print(f"SDK {c['label']} output vs PyTorch: max-abs {c['max_abs_diff']:.3g}, NMSE "
              f"{c['nmse']:.3g} ({c['sdk_samples']} vs {c['torch_samples']} samples)")
    print(f"peak RSS {result['peak_rss_kb'] / 1024:.1f} MiB (after import "
          f"{rss_import / 1024:.1f} MiB, after loading the model {rss_model / 1024:.1f} MiB)")
    if gpu:
        print(f"GPU memory, torch.cuda.max_memory_allocated: "
              f"{result['gpu_max_mem_bytes'] / 2**20:.1f} MiB (after loading the model "
              f"{gpu_mem_model / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
