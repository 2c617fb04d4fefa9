"""The combined table of bench/flexicodec_decode/run.sh, from the JSON files it wrote to DIR:
sdk-f32.json (and sdk-f16.json, sdk-f16a.json when present) from sotto_bench_flexicodec_decode --json,
torch.json from torch_bench.py --json, machine-start.json / machine-end.json from
bench/vocos/bench_util.py machine. Standard library only.

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
    if md:
        say("| " + " | ".join(head) + " |")
        say("|" + "|".join("---" if i < 1 else "---:" for i in range(len(head))) + "|")
        for r in rows:
            say("| " + " | ".join(r) + " |")
    else:
        w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        say("  ".join(c.ljust(w[i]) if i < 1 else c.rjust(w[i]) for i, c in enumerate(head)))
        for r in rows:
            say("  ".join(c.ljust(w[i]) if i < 1 else c.rjust(w[i]) for i, c in enumerate(r)))
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
