"""The combined table of bench/flexicodec_decode/run.sh, from the JSON files it wrote to DIR:
sdk-f32.json (and sdk-f16.json, sdk-f16a.json when present) from sotto_bench_flexicodec_decode --json,
torch.json from torch_bench.py --json, machine-start.json / machine-end.json from
bench/vocos/bench_util.py machine. Standard library only.

A GPU run (run.sh --gpu N: the SDK's "backend" is "cuda", or PyTorch's "device" is not "cpu")
gets its own table: the GPU's name and driver (from torch.json, else gpu.csv, nvidia-smi's
line), the ratio without a target (the GPU targets of the issue are for Vocos), PyTorch's
device memory; either side may be missing there (its run failed), and the table says so.

usage: report.py DIR [--markdown]
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "vocos"))
import bench_util  # noqa: E402  (bench/vocos/bench_util.py: machine state, JSON helpers)

SPEED_TARGET = 3.0  # SDK / PyTorch speed at 1 thread


def _machine_lines(m0, m1):
    out = []
    if not m0:
        return out
    out.append(f"machine: {m0['cpu']}, {m0['cpus']} CPUs, "
               f"{m0['mem_total_kb'] / 1048576:.1f} GiB, Linux {m0['kernel']}; {m0['cc']}; "
               f"OpenBLAS {m0['openblas']}")

    def la(m):
        return "/".join(f"{x:.2f}" for x in m["load_avg"]) if m else "?"

    out.append(f"load average (1/5/15 min) at start {la(m0)}, at end {la(m1)}")
    for when, m in (("start", m0), ("end", m1)):
        busy = [f"{p['name']} (nice {p['nice']}, {p['pcpu']:.0f}% of a CPU)"
                for p in ((m or {}).get("busy_processes") or [])]
        out.append(f"other processes busy at {when} (2 s sample): "
                   + (", ".join(busy) if busy else "none"))
    return out


def _table(head, rows, md, say):
    if md:
        say("| " + " | ".join(head) + " |")
        say("|" + "|".join("---" if i < 1 else "---:" for i in range(len(head))) + "|")
        for r in rows:
            say("| " + " | ".join(r) + " |")
    else:
        w = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head)]
        say("  ".join(c.ljust(w[i]) if i < 1 else c.rjust(w[i]) for i, c in enumerate(head)))
        for r in rows:
            say("  ".join(c.ljust(w[i]) if i < 1 else c.rjust(w[i]) for i, c in enumerate(r)))


def _gpu_csv(d, index):
    """(name, driver, memory) of nvidia-smi's line for device `index` in DIR/gpu.csv, or None."""
    try:
        with open(os.path.join(d, "gpu.csv")) as f:
            rows = [[x.strip() for x in ln.split(",")] for ln in f if ln.strip()]
    except OSError:
        return None
    for r in rows:
        if len(r) >= 4 and r[0] == str(index):
            return r[1], r[2], r[3]
    return None


def _mib(b):
    return f"{b / 1048576:.1f} MiB" if b is not None else "n/a"


def report_gpu(d, md, sides, pt, m0, m1):
    """The table of a GPU run (run.sh --gpu N)."""
    lines = []

    def say(s=""):
        lines.append(s)

    ref = sides[0][1] if sides else None
    shape = ref or pt
    index = ref["device"] if ref else int((pt["device"].split(":") + ["0"])[1] or 0)
    name = ref["model_name"] if ref else f"flexicodec-{pt['config']}-random"
    config = pt["config"] if pt else "?"
    say(f"FlexiCodec decode on a GPU, {name} (random weights, config {config}): "
        f"{shape['frames']} frames in {shape['groups']} groups "
        f"({shape['frames'] / shape['groups']:.2f} frames/group), {shape['stages']} of "
        f"{shape['model_stages']} RVQ stages, {shape['audio_samples']} samples = "
        f"{shape['audio_seconds']:.3f} s of {shape['sample_rate']} Hz audio")
    if ref and pt and (pt["frames"], pt["groups"], pt["stages"], pt["audio_samples"]) != (
            ref["frames"], ref["groups"], ref["stages"], ref["audio_samples"]):
        say("WARNING: the two sides decoded different shapes: PyTorch "
            f"{pt['frames']} frames / {pt['groups']} groups / {pt['stages']} stages / "
            f"{pt['audio_samples']} samples")
    smi = _gpu_csv(d, index)
    if pt and pt.get("device_name"):
        gpu = (f"GPU: {pt['device_name']} ({pt['device']}), driver "
               f"{pt.get('driver') or (smi[1] if smi else '?')}, CUDA {pt.get('cuda')} "
               f"(PyTorch's), cuDNN {pt.get('cudnn')}")
    elif smi:
        gpu = f"GPU: {smi[0]} (device {index}), driver {smi[1]}, {smi[2]}"
    else:
        gpu = f"GPU: CUDA device {index} (name unknown: PyTorch did not run, no nvidia-smi)"
    say(gpu)
    if ref and pt and pt["device"] != f"cuda:{index}":
        say(f"WARNING: PyTorch ran on {pt['device']}, the SDK on CUDA device {index}")
    say(f"where: the SDK (backend CUDA, device {index}) runs the bottleneck transformer and the "
        "DAC decoder on the GPU in f32 (whatever the file's dtype) and the group stages (FSQ, "
        "ConvNeXt, RVQ, expansion) on the CPU; PyTorch runs the whole decode_from_codes on the "
        "GPU, TF32 off for matmuls and cuDNN")
    if not ref:
        say("The SDK side (sotto_bench_flexicodec_decode --gpu) gave no result: see its log.")
    if not pt:
        say("The PyTorch side (torch_bench.py --device) gave no result: see its log.")
    for ln in _machine_lines(m0, m1):
        say(ln)
    git = f" (git {m0['git']})" if m0 and "git" in m0 else ""
    parts = []
    if ref:
        parts.append(f"SDK: sotto {ref['sotto_version']}{git}, CPU features "
                     f"{ref['cpu_features'].strip()}")
    if pt:
        v = pt["versions"]
        parts.append(f"PyTorch {v['torch']}, flexicodec {v['flexicodec']}, numpy "
                     f"{v['numpy']}, python {v['python']}")
    say("; ".join(parts))
    for c in (pt or {}).get("sdk_check", []):
        say(f"same computation: SDK {c['label']} output vs PyTorch max-abs "
            f"{c['max_abs_diff']:.2g}, NMSE {c['nmse']:.2g} (signal peak "
            f"{pt['ref_max_abs']:.2g}; {c['sdk_samples']} vs {c['torch_samples']} samples)")
    say("repetitions: median of "
        + " and ".join(f"{s['reps']} ({who})" for who, s in (("SDK", ref), ("PyTorch", pt))
                       if s)
        + " whole-utterance decodes per thread count, each after an untimed warm-up decode; "
          "the SDK's time ends with the samples on the host, PyTorch's with "
          "torch.cuda.synchronize() (its output stays on the device)")
    loads = [f"SDK {side['weights_dtype']} " + ", ".join(f"{r['load_s']:.2f} s"
                                                        for r in side["runs"])
             for _, side in sides]
    if pt:
        loads.append(f"PyTorch {pt['load_s']:.1f} s (builds the whole official model, "
                     f"load_state_dict, then moves it to the GPU)")
    say("model load (not timed in the table): " + "; ".join(loads))
    say()
    say("speed = x real time (audio seconds / decode seconds; higher is faster); "
        "ratio = SDK / PyTorch; median decode time in seconds; threads = CPU threads "
        "(the SDK's group stages, torch.set_num_threads)")
    say()

    def runs(side):
        return {r["threads"]: r for r in side["runs"]} if side else {}

    rpt = runs(pt)
    rs = [(label, runs(side)) for label, side in sides]
    threads = sorted(set(rpt).union(*(set(r) for _, r in rs)))
    head = (["threads"] + [f"SDK {label}" for label, _ in rs] + ["PyTorch"]
            + [f"{label}/PT" for label, _ in rs] + [f"SDK {label} s" for label, _ in rs]
            + ["PyTorch s"])

    def fx(x, f="{:.2f}"):
        return f.format(x) if x is not None else "n/a"

    rows = []
    for nt in threads:
        p = rpt.get(nt)
        got = [r.get(nt) for _, r in rs]
        rows.append([str(nt)] + [fx(a and a["xrt_median"]) for a in got]
                    + [fx(p and p["xrt_median"])]
                    + [fx(a and p and a["xrt_median"] / p["xrt_median"]) for a in got]
                    + [fx(a and a["median_s"], "{:.3f}") for a in got]
                    + [fx(p and p["median_s"], "{:.3f}")])
    _table(head, rows, md, say)
    say()
    say("memory:")
    for label, side in sides:
        say(f"  sotto_bench_flexicodec_decode, {label}: peak RSS "
            f"{bench_util._mb(side['peak_rss_kb'])} (after the first model load "
            f"{bench_util._mb(side['runs'][0]['rss_after_load_kb'])}); its device memory "
            f"is not measured")
    if pt:
        say(f"  torch_bench.py: peak RSS {bench_util._mb(pt['peak_rss_kb'])}; "
            f"torch.cuda.max_memory_allocated {_mib(pt.get('gpu_max_mem_bytes'))} (after "
            f"loading the model {_mib(pt.get('gpu_mem_after_model_bytes'))}; tensors only, "
            f"not the CUDA context)")
    say()
    ratios = [f"SDK {label} {side[nt]['xrt_median'] / rpt[nt]['xrt_median']:.2f}x at {nt} "
              f"thread{'s' if nt > 1 else ''}"
              for label, side in rs for nt in sorted(side) if nt in rpt]
    say("targets: none for FlexiCodec on a GPU (the issue's GPU targets are for Vocos); "
        "SDK / PyTorch speed: " + ("; ".join(ratios) if ratios else "n/a (a side is missing)"))
    print("\n".join(lines))


def report(d, md):
    f32, f16, pt = (bench_util._load(os.path.join(d, n))
                    for n in ("sdk-f32.json", "sdk-f16.json", "torch.json"))
    # the f16 model with binary16 arithmetic ("h16"), where the CPU has AVX512-FP16
    f16a = bench_util._load(os.path.join(d, "sdk-f16a.json"))
    if f16a and not f16a.get("f16_arithmetic"):
        f16a = None
    sides = [(label, side) for label, side in (("f32", f32), ("f16", f16), ("h16", f16a))
             if side]
    m0 = bench_util._load(os.path.join(d, "machine-start.json"))
    m1 = bench_util._load(os.path.join(d, "machine-end.json"))
    if ((pt and pt.get("device", "cpu") != "cpu")
            or any(side.get("backend") == "cuda" for _, side in sides)):
        if not pt and not sides:
            sys.exit("report.py: neither sdk-*.json nor torch.json in " + d)
        report_gpu(d, md, sides, pt, m0, m1)
        return
    ref = f32 or f16
    if not ref or not pt:
        sys.exit("report.py: sdk-f32.json / torch.json missing or unreadable")
    lines = []

    def say(s=""):
        lines.append(s)

    say(f"FlexiCodec decode, {ref['model_name']} (random weights, config {pt['config']}): "
        f"{ref['frames']} frames in {ref['groups']} groups "
        f"({ref['frames'] / ref['groups']:.2f} frames/group), {ref['stages']} of "
        f"{ref['model_stages']} RVQ stages, {ref['audio_samples']} samples = "
        f"{ref['audio_seconds']:.3f} s of {ref['sample_rate']} Hz audio")
    if (pt["frames"], pt["groups"], pt["stages"], pt["audio_samples"]) != (
            ref["frames"], ref["groups"], ref["stages"], ref["audio_samples"]):
        say("WARNING: the two sides decoded different shapes: PyTorch "
            f"{pt['frames']} frames / {pt['groups']} groups / {pt['stages']} stages / "
            f"{pt['audio_samples']} samples")
    for ln in _machine_lines(m0, m1):
        say(ln)
    v = pt["versions"]
    git = f" (git {m0['git']})" if m0 and "git" in m0 else ""
    say(f"SDK: sotto {ref['sotto_version']}{git}, CPU features {ref['cpu_features'].strip()}; "
        f"PyTorch {v['torch']}, flexicodec {v['flexicodec']}, numpy {v['numpy']}, "
        f"python {v['python']}")
    say("PyTorch computes with: " + "; ".join(pt["blas"]))
    for c in pt.get("sdk_check", []):
        say(f"same computation: SDK {c['label']} output vs PyTorch max-abs "
            f"{c['max_abs_diff']:.2g}, NMSE {c['nmse']:.2g} (signal peak "
            f"{pt['ref_max_abs']:.2g}; {c['sdk_samples']} vs {c['torch_samples']} samples)")
    say(f"repetitions: median of {ref['reps']} (SDK) and {pt['reps']} (PyTorch) whole-utterance "
        f"decodes per thread count, each after an untimed warm-up decode")
    loads = [f"SDK {side['weights_dtype']} " + ", ".join(
        f"{r['load_s']:.2f} s" for r in side["runs"]) for side in (f32, f16) if side]
    if f16a:
        loads.append("SDK f16 with binary16 arithmetic " + ", ".join(
            f"{r['load_s']:.2f} s" for r in f16a["runs"]))
    say("model load (not timed in the table): " + "; ".join(loads)
        + f"; PyTorch {pt['load_s']:.1f} s (builds the whole official model, then "
          f"load_state_dict)")
    say()
    say("speed = x real time (audio seconds / decode seconds; higher is faster); "
        "ratio = SDK / PyTorch; median decode time in seconds"
        + ("; h16 = the f16 model with binary16 arithmetic" if f16a else ""))
    say()

    def runs(side):
        return {r["threads"]: r for r in side["runs"]} if side else {}

    rpt = runs(pt)
    rs = [(label, runs(side)) for label, side in sides]
    head = (["threads"] + [f"SDK {label}" for label, _ in rs] + ["PyTorch"]
            + [f"{label}/PT" for label, _ in rs] + [f"SDK {label} s" for label, _ in rs]
            + ["PyTorch s"])

    def fx(x, f="{:.2f}"):
        return f.format(x) if x is not None else "n/a"

    rows = []
    for nt in sorted(rpt):
        p = rpt[nt]
        got = [r.get(nt) for _, r in rs]
        rows.append([str(nt)] + [fx(a and a["xrt_median"]) for a in got]
                    + [fx(p["xrt_median"])]
                    + [fx(a and a["xrt_median"] / p["xrt_median"]) for a in got]
                    + [fx(a and a["median_s"], "{:.3f}") for a in got]
                    + [fx(p["median_s"], "{:.3f}")])
    _table(head, rows, md, say)
    say()
    say("peak RSS (getrusage maximum of the whole process):")
    for label, side in sides:
        if side:
            say(f"  sotto_bench_flexicodec_decode, {label}: "
                f"{bench_util._mb(side['peak_rss_kb'])} (after the first model load "
                f"{bench_util._mb(side['runs'][0]['rss_after_load_kb'])})")
    say(f"  torch_bench.py: {bench_util._mb(pt['peak_rss_kb'])} (after the imports: "
        f"{bench_util._mb(pt['rss_after_import_kb'])}, after loading the model: "
        f"{bench_util._mb(pt['rss_after_model_kb'])})")
    say()
    if pt["config"] != "12hz_v1":
        say(f"targets: they apply to the full released configuration (12hz_v1), not to "
            f"{pt['config']}")
        print("\n".join(lines))
        return
    say("targets:")
    if 1 in rpt:
        for label, side in rs:
            if 1 in side:
                ratio = side[1]["xrt_median"] / rpt[1]["xrt_median"]
                say(f"  decode speed at 1 thread >= {SPEED_TARGET:g}x PyTorch: SDK {label} "
                    f"{ratio:.2f}x: {'met' if ratio >= SPEED_TARGET else 'NOT met'}")
    for label, side in sides:
        if side:
            ok = side["peak_rss_kb"] <= pt["peak_rss_kb"]
            say(f"  peak memory <= the PyTorch process's: SDK {label} "
                f"{bench_util._mb(side['peak_rss_kb'])} vs {bench_util._mb(pt['peak_rss_kb'])}: "
                f"{'met' if ok else 'NOT met'}")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    report(args.dir, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
