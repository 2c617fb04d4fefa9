"""Helpers of bench/vocos/run.sh (standard library, numpy, scipy and soundfile only).

Subcommands:
  machine                       JSON on stdout: CPU model, cores, load average, the processes
                                busy over 2 s (name, nice, %CPU), compiler, OpenBLAS version
  long-wav OUT.wav [--minutes M] [--speech DIR]
                                a mono 24 kHz 16-bit WAV of M minutes: the speech clips of DIR
                                (any rate, resampled) concatenated and repeated, or a
                                deterministic synthetic voice-like signal when DIR has none
  time-v OUT -- COMMAND ...     runs COMMAND and writes its peak RSS in the format of GNU
                                `time -v` (only the lines the report reads)
  report DIR [--markdown]       the combined table from the JSON files run.sh wrote to DIR
"""

import argparse
import glob
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time

SR = 24000


# ---- machine -----------------------------------------------------------------------------


def _run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""


def _cpu_ticks():
    """{pid: (name, nice, utime + stime ticks)} from /proc."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        rest = st[st.rindex(")") + 2:].split()
        out[int(pid)] = (name, int(rest[16]), int(rest[11]) + int(rest[12]))
    return out


def _busy_processes(interval=2.0):
    """Processes (other than this one) that used >= 5% of a CPU over `interval` seconds."""
    hz = os.sysconf("SC_CLK_TCK")
    a = _cpu_ticks()
    time.sleep(interval)
    b = _cpu_ticks()
    busy = []
    for pid, (name, nice, ticks) in b.items():
        if pid == os.getpid() or pid not in a:
            continue
        pcpu = 100.0 * (ticks - a[pid][2]) / hz / interval
        if pcpu >= 5.0:
            busy.append({"name": name, "nice": nice, "pcpu": round(pcpu, 1)})
    return sorted(busy, key=lambda p: -p["pcpu"])


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    cpu = ln.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/loadavg") as f:
            load = [float(x) for x in f.read().split()[:3]]
    except OSError:
        load = []
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    procs = _busy_processes()
    cc = _run(["cc", "--version"]).splitlines()
    repo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    head = _run(["git", "-C", repo, "rev-parse", "--short", "HEAD"]).strip() or "?"
    dirty = _run(["git", "-C", repo, "status", "--porcelain"]).strip()
    return {
        "time_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "cpu": cpu, "cpus": os.cpu_count(), "mem_total_kb": mem_kb,
        "kernel": platform.release(), "load_avg": load,
        "busy_processes": procs[:6],
        "cc": cc[0] if cc else "?",
        "openblas": _run(["pkg-config", "--modversion", "openblas"]).strip() or "?",
        "git": head + (" + uncommitted changes" if dirty else ""),
    }


# ---- long wav ----------------------------------------------------------------------------


def _speech(directory):
    import numpy as np
    import soundfile as sf
    from scipy.signal import resample_poly
    from math import gcd

    clips = []
    if directory and os.path.isdir(directory):
        for p in sorted(glob.glob(os.path.join(directory, "*"))):
            if not p.lower().endswith((".wav", ".flac", ".ogg")):
                continue
            x, sr = sf.read(p, dtype="float32", always_2d=True)
            x = x.mean(axis=1)
            if sr != SR:
                g = gcd(SR, sr)
                x = resample_poly(x, SR // g, sr // g).astype(np.float32)
            peak = float(np.abs(x).max()) if x.size else 0.0
            if peak > 0:
                clips.append(0.5 * x / peak)
                clips.append(np.zeros(SR // 4, dtype=np.float32))
    return clips


def _synthetic(n):
    """A voice-like test signal: harmonics of a wandering pitch, syllable-rate envelope, a
    little noise (fixed seed)."""
    import numpy as np

    t = np.arange(n) / SR
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.3 * t) + 15 * np.sin(2 * np.pi * 2.1 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 16))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3.7 * t) ** 2
    rng = np.random.default_rng(7)
    x = env * x + 0.05 * rng.standard_normal(n)
    return (0.4 * x / np.abs(x).max()).astype(np.float32)


def long_wav(args):
    import numpy as np
    import soundfile as sf

    n = int(args.minutes * 60 * SR)
    clips = _speech(args.speech)
    if clips:
        one = np.concatenate(clips)
        reps = -(-n // one.size)
        x = np.tile(one, reps)[:n]
        source = f"{len(clips) // 2} speech clips, repeated"
    else:
        x = _synthetic(n)
        source = "synthetic"
    sf.write(args.out, x, SR, subtype="PCM_16")
    print(json.dumps({"path": args.out, "seconds": n / SR, "rate": SR, "source": source}))


# ---- time -v -----------------------------------------------------------------------------


def time_v(args):
    cmd = args.command[1:] if args.command and args.command[0] == "--" else args.command
    t0 = time.monotonic()
    rc = subprocess.call(cmd)
    wall = time.monotonic() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(args.out, "w") as f:
        f.write(f"\tCommand being timed: \"{' '.join(cmd)}\"\n")
        f.write(f"\tElapsed (wall clock) time (h:mm:ss or m:ss): {wall:.2f}\n")
        f.write(f"\tMaximum resident set size (kbytes): {ru.ru_maxrss}\n")
        f.write(f"\tExit status: {rc}\n")
    return rc


# ---- report ------------------------------------------------------------------------------


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _max_rss_kb(path):
    try:
        with open(path) as f:
            m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", f.read())
            return int(m.group(1)) if m else None
    except OSError:
        return None


def _mb(kb):
    return f"{kb / 1024:.1f} MiB" if kb else "n/a"


def _cases(side):
    """{(case, threads): (x RT, p50 ms, p99 ms)} of one side's JSON."""
    out = {}
    if not side:
        return out
    for run in side["runs"]:
        nt = run["threads"]
        out[("offline", nt)] = (run["offline"]["xrt_median"], None, None)
        for s in run["stream"]:
            out[(f"stream {s['chunk']}", nt)] = (s["xrt_median"], s["step_p50_ms"],
                                                 s["step_p99_ms"])
    return out


def report(args):
    d = args.dir
    f32, f16, pt = (_load(os.path.join(d, n)) for n in ("sdk-f32.json", "sdk-f16.json",
                                                        "torch.json"))
    # f16 weights with binary16 arithmetic: only where the CPU has AVX512-FP16
    f16a = _load(os.path.join(d, "sdk-f16a.json"))
    if f16a and not f16a.get("f16_arithmetic"):
        f16a = None
    m0 = _load(os.path.join(d, "machine-start.json"))
    m1 = _load(os.path.join(d, "machine-end.json"))
    ref = f32 or f16
    if not ref or not pt:
        sys.exit("bench_util.py report: sdk-f32.json / torch.json missing or unreadable")
    md = args.markdown
    lines = []

    def say(s=""):
        lines.append(s)

    say(f"Vocos {ref['model_name']} (random weights, full size): {ref['frames']} frames = "
        f"{ref['audio_seconds']:.3f} s of {ref['sample_rate']} Hz audio, hop {ref['hop']}, "
        f"{ref['feature_dim']} mels; SDK look-ahead {ref['lookahead_samples']} samples "
        f"({1e3 * ref['lookahead_samples'] / ref['sample_rate']:.0f} ms)")
    if m0:
        say(f"machine: {m0['cpu']}, {m0['cpus']} CPUs, {m0['mem_total_kb'] / 1048576:.1f} GiB, "
            f"Linux {m0['kernel']}; {m0['cc']}; OpenBLAS {m0['openblas']}")
        la = lambda m: "/".join(f"{x:.2f}" for x in m["load_avg"]) if m else "?"  # noqa: E731
        say(f"load average (1/5/15 min) at start {la(m0)}, at end {la(m1)}")
        for when, m in (("start", m0), ("end", m1)):
            busy = [f"{p['name']} (nice {p['nice']}, {p['pcpu']:.0f}% of a CPU)"
                    for p in ((m or {}).get("busy_processes") or [])]
            say(f"other processes busy at {when} (2 s sample): "
                + (", ".join(busy) if busy else "none"))
    v = pt["versions"]
    git = f" (git {m0['git']})" if m0 and "git" in m0 else ""
    say(f"SDK: sotto {ref['sotto_version']}{git}, CPU features {ref['cpu_features'].strip()}; "
        f"PyTorch {v['torch']}, vocos {v['vocos']}, numpy {v['numpy']}, "
        f"python {v['python']}")
    say("PyTorch computes with: " + "; ".join(pt["blas"]))
    if "sdk_check" in pt:
        c = pt["sdk_check"]
        say(f"same computation: SDK f32 offline output vs PyTorch max-abs {c['max_abs_diff']:.2g} "
            f"(signal peak {c['ref_max_abs']:.2g}; {c['sdk_samples']} vs {c['torch_samples']} "
            f"samples)")
    raws = [os.path.join(d, f"sdk-offline-{n}.raw") for n in ("f32", "f16a", "f16")]
    if f16a and all(os.path.exists(r) for r in raws):  # (--out keeps no raw outputs)
        import numpy as np
        a = np.fromfile(os.path.join(d, "sdk-offline-f32.raw"), np.float32)
        b = np.fromfile(os.path.join(d, "sdk-offline-f16a.raw"), np.float32)
        a16 = np.fromfile(os.path.join(d, "sdk-offline-f16.raw"), np.float32)
        snr = lambda x: 10 * np.log10(np.sum(a ** 2) / np.sum((x - a) ** 2))  # noqa: E731
        say(f"binary16 arithmetic (f16 model, sotto_model_params.f16_arithmetic): offline output "
            f"vs the SDK's f32 output max-abs {np.max(np.abs(b - a)):.2g}, SNR {snr(b):.1f} dB "
            f"(f16 weights with f32 arithmetic: max-abs {np.max(np.abs(a16 - a)):.2g}, "
            f"SNR {snr(a16):.1f} dB)")
    diffs = [s["max_abs_diff_vs_offline"] for side in (f32, f16, f16a, pt) if side
             for r in side["runs"] for s in r["stream"]]
    say(f"streaming exactness: every stream equals its offline output within max-abs "
        f"{max(diffs):.2g}")
    say(f"repetitions: SDK offline median of {ref['offline_reps']}, streaming median of "
        f"{ref['stream_reps']}; PyTorch offline median of {pt['offline_reps']}, streaming "
        f"{pt['stream_reps']} timed run(s); each after an untimed warm-up run")
    say()
    say("speed = x real time (audio seconds / compute seconds; higher is faster; RTF is the "
        "inverse); ratio = SDK / PyTorch; per-call latency p50/p99 in ms"
        + ("; h16 = the f16 model with binary16 arithmetic" if f16a else ""))
    say()
    cf32, cf16, cpt = _cases(f32), _cases(f16), _cases(pt)
    cf16a = _cases(f16a) if f16a else {}
    keys = sorted(cpt, key=lambda k: (k[1], k[0] != "offline",
                                      int(k[0].split()[1]) if k[0] != "offline" else 0))
    head = ["case", "threads", "SDK f32", "SDK f16", "PyTorch", "f32/PT", "f16/PT",
            "SDK f32 ms", "SDK f16 ms", "PyTorch ms"]
    if f16a:
        # after each f16 column: the same with binary16 arithmetic ("h16")
        head = ["case", "threads", "SDK f32", "SDK f16", "SDK h16", "PyTorch", "f32/PT", "f16/PT",
                "h16/PT", "SDK f32 ms", "SDK f16 ms", "SDK h16 ms", "PyTorch ms"]

    def fx(x):
        return f"{x:.2f}" if x is not None else "n/a"

    def lat(c):
        return f"{c[1]:.1f} / {c[2]:.1f}" if c and c[1] is not None else ""

    rows = []
    for k in keys:
        a, b, p = cf32.get(k), cf16.get(k), cpt.get(k)
        row = [k[0], str(k[1]), fx(a and a[0]), fx(b and b[0]), fx(p[0]),
               fx(a and a[0] / p[0]), fx(b and b[0] / p[0]), lat(a), lat(b), lat(p)]
        if f16a:
            h = cf16a.get(k)
            row = row[:4] + [fx(h and h[0])] + row[4:7] + [fx(h and h[0] / p[0])] + row[7:9] + \
                [lat(h)] + row[9:]
        rows.append(row)
    if md:
        say("| " + " | ".join(head) + " |")
        say("|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|")
        for r in rows:
            say("| " + " | ".join(r) + " |")
    else:
        w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        fmt = lambda r: "  ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i])  # noqa: E731
                                  for i, c in enumerate(r))
        say(fmt(head))
        for r in rows:
            say(fmt(r))
    say()
    say("peak RSS (getrusage maximum of the whole process):")
    if f32:
        say(f"  sotto_bench_vocos, f32 model: {_mb(f32['peak_rss_kb'])}")
    if f16:
        say(f"  sotto_bench_vocos, f16 model: {_mb(f16['peak_rss_kb'])}")
    if f16a:
        say(f"  sotto_bench_vocos, f16 model, binary16 arithmetic: {_mb(f16a['peak_rss_kb'])}")
    say(f"  torch_bench.py: {_mb(pt['peak_rss_kb'])} (after `import torch`: "
        f"{_mb(pt['rss_after_import_kb'])}, after loading the model: "
        f"{_mb(pt['rss_after_model_kb'])})")
    lw = _load(os.path.join(d, "long-wav.json"))
    if lw:
        for dt in ("f32", "f16"):
            rss = _max_rss_kb(os.path.join(d, f"vocode-{dt}.time"))
            vj = _load(os.path.join(d, f"vocode-{dt}.json"))
            speed = f", {vj['times_real_time']:.1f} x real time" if vj else ""
            say(f"  sotto vocode, {lw['seconds'] / 60:.0f}-minute {lw['rate']} Hz file "
                f"({lw['source']}), {dt} model, 1 thread: {_mb(rss)}{speed} "
                f"(target <= 100 MB = 95.4 MiB)")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("machine")
    p = sub.add_parser("long-wav")
    p.add_argument("out")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--speech")
    p = sub.add_parser("time-v")
    p.add_argument("out")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p = sub.add_parser("report")
    p.add_argument("dir")
    p.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    if args.cmd == "machine":
        print(json.dumps(machine()))
    elif args.cmd == "long-wav":
        long_wav(args)
    elif args.cmd == "time-v":
        return time_v(args)
    else:
        report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
