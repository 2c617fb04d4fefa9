"""The combined table of bench/flexicodec_encode/run.sh from the JSON files in DIR: sdk.json
(sotto_bench_flexicodec_encode --json), torch.json (torch_bench.py bench --json),
machine-start.json / machine-end.json (bench/vocos/bench_util.py machine). Reuses the helpers
of bench/vocos/bench_util.py and bench/flexicodec_decode/report.py.

usage: report.py DIR [--markdown]
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "vocos"))
sys.path.insert(0, os.path.join(HERE, "..", "flexicodec_decode"))
import bench_util  # noqa: E402
from report import _machine_lines  # noqa: E402  (bench/flexicodec_decode/report.py)

SPEED_TARGET = 3.0  # SDK / PyTorch encode speed at 1 thread


def report(d, md):
    sdk = bench_util._load(os.path.join(d, "sdk.json"))
    pt = bench_util._load(os.path.join(d, "torch.json"))
    m0 = bench_util._load(os.path.join(d, "machine-start.json"))
    m1 = bench_util._load(os.path.join(d, "machine-end.json"))
    if not sdk or not pt:
        sys.exit("report.py: sdk.json / torch.json missing or unreadable")
    h16 = bench_util._load(os.path.join(d, "sdk-h16.json"))
    if h16 and not h16.get("f16_arithmetic"):
        h16 = None  # no AVX512-FP16 here: the run was f32 arithmetic
    out = []
    say = out.append
    say(f"FlexiCodec encode (random weights, config {pt['config']}, SenseVoice "
        f"{pt['sensevoice_blocks']} blocks): {sdk['audio_seconds']:.3f} s of 16 kHz audio, "
        f"threshold {sdk['threshold']:.2f}, {sdk['stages']} RVQ stages; SDK {sdk['groups']} "
        f"groups / {sdk['frames']} frames, PyTorch {pt['groups']} groups / {pt['frames']} frames")
    out.extend(_machine_lines(m0, m1))
    v = pt["versions"]
    say(f"SDK: sotto {sdk['sotto_version']}, CPU features {sdk['cpu_features'].strip()}; "
        f"PyTorch {v['torch']}, flexicodec {v['flexicodec']}, numpy {v['numpy']}, "
        f"python {v['python']}")
    say("PyTorch computes with: " + "; ".join(pt["blas"]))
    for key, label in (("sdk_check", "codes"), ("sdk_check_h16", "codes, binary16 arithmetic")):
        c = pt.get(key)
        if not c or (key == "sdk_check_h16" and not h16):
            continue
        say(f"{label}: group lengths {c['lengths_equal']}/{c['lengths_total']} identical "
            f"({c['sdk_groups']} vs {c['torch_groups']} groups), FSQ {c['fsq_equal']}/"
            f"{c['fsq_total']}, RVQ {c['rvq_equal']}/{c['rvq_total']} (stage 0: "
            f"{c['rvq_equal_stage0']}/{c['torch_groups']})")
    say(f"repetitions: median of {sdk['reps']} (SDK) and {pt['reps']} (PyTorch) encodes per "
        f"thread count after a warm-up; model load not timed (SDK "
        + ", ".join(f"{r['load_s']:.2f} s" for r in sdk["runs"]) + f"; PyTorch {pt['load_s']:.1f} s)")
    say("")
    head = ["threads", "SDK enc xRT", "PyTorch enc xRT", "SDK/PT", "SDK enc s", "PyTorch enc s",
            "SDK dec s", "SDK enc+dec xRT"]
    head[0:1] = ["threads", "SDK"]
    rs = {r["threads"]: r for r in sdk["runs"]}
    sides = [("f32", rs)] + ([("f16 h16", {r["threads"]: r for r in h16["runs"]})] if h16 else [])
    rows = []
    for p in pt["runs"]:
        for label, side in sides:
            s = side.get(p["threads"])
            if not s:
                continue
            ed = s["median_s"] + s["decode_median_s"]
            rows.append([str(p["threads"]), label, f"{s['xrt_median']:.2f}",
                         f"{p['xrt_median']:.2f}", f"{s['xrt_median'] / p['xrt_median']:.2f}",
                         f"{s['median_s']:.3f}", f"{p['median_s']:.3f}",
                         f"{s['decode_median_s']:.3f}", f"{sdk['audio_seconds'] / ed:.2f}"])
    if md:
        say("| " + " | ".join(head) + " |")
        say("|---|" + "---:|" * (len(head) - 1))
        for r in rows:
            say("| " + " | ".join(r) + " |")
    else:
        w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        for r in [head] + rows:
            say("  ".join(x.rjust(w[i]) for i, x in enumerate(r)))
    say("")
    say(f"peak RSS: sotto_bench_flexicodec_encode {bench_util._mb(sdk['peak_rss_kb'])}; "
        f"torch_bench.py {bench_util._mb(pt['peak_rss_kb'])} (after imports "
        f"{bench_util._mb(pt['rss_after_import_kb'])}, after loading "
        f"{bench_util._mb(pt['rss_after_model_kb'])})")
    if pt["config"] == "12hz_v1" and 1 in rs and any(p["threads"] == 1 for p in pt["runs"]):
        p1 = next(p for p in pt["runs"] if p["threads"] == 1)
        ratio = rs[1]["xrt_median"] / p1["xrt_median"]
        ed = rs[1]["median_s"] + rs[1]["decode_median_s"]
        say(f"target encode >= {SPEED_TARGET:g}x PyTorch at 1 thread: {ratio:.2f}x: "
            f"{'met' if ratio >= SPEED_TARGET else 'NOT met'}")
        if h16 and any(r["threads"] == 1 for r in h16["runs"]):
            r1 = next(r for r in h16["runs"] if r["threads"] == 1)
            ratio16 = r1["xrt_median"] / p1["xrt_median"]
            say(f"  with binary16 arithmetic (f16 model, f16_arithmetic = 2): {ratio16:.2f}x: "
                f"{'met' if ratio16 >= SPEED_TARGET else 'NOT met'}")
        say(f"target encode + decode of {sdk['audio_seconds']:.0f} s faster than real time on "
            f"one thread: {ed:.2f} s: {'met' if ed < sdk['audio_seconds'] else 'NOT met'}")
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dir")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    report(args.dir, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
