"""The table of bench/vocos_gpu/run.sh: sotto_bench_vocos_gpu (sdk.json) against
torch_bench.py (torch.json, optional) from one run folder, with the ratios and the targets of
the GPU Vocos issue (set for an H100: batch of 64 streams ≥ 10,000x real time, a 4-frame
streaming step ≤ 0.5 ms, both ≥ 2x PyTorch on the same GPU).

Ratios: speed (x real time) SDK / PyTorch; latency PyTorch ms / SDK ms; above 1 the SDK is
faster.

usage: report.py RUN_DIR
"""

import json
import os
import sys

BATCH_TARGET_XRT = 10000.0
STEP_TARGET_MS = 0.5
RATIO_TARGET = 2.0


def load(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def by_mode(doc):
    return {r["mode"]: r for r in doc["runs"]} if doc else {}


def fmt(v, digits=1):
    return "—" if v is None else f"{v:.{digits}f}"


def verdict(ok):
    return "met" if ok else "not met"


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    run_dir = sys.argv[1]
    sdk = load(os.path.join(run_dir, "sdk.json"))
    pt = load(os.path.join(run_dir, "torch.json"))
    if sdk is None and pt is None:
        raise SystemExit(f"report.py: neither sdk.json nor torch.json in {run_dir}")
    if sdk is None:
        print("The SDK side (sotto_bench_vocos_gpu) gave no result: see its log.")
        sdk = dict(pt, runs=[])
    if sdk.get("error"):
        print(f"The SDK side stopped early: {sdk['error']}")
    s_modes, p_modes = by_mode(sdk), by_mode(pt)
    B, step = sdk["batch"], sdk["step"]
    secs = sdk["audio_seconds"]

    print(f"Vocos on {sdk['device']}: the SDK's CUDA forward (sotto_bench_vocos_gpu) against "
          + (f"PyTorch {pt['versions']['torch']} (CUDA {pt['versions']['cuda']}, official vocos "
             f"{pt['versions']['vocos']}; {pt['loader']})" if pt else "PyTorch (not run)")
          + ", same GPU, same weights, same features.")
    print(f"{sdk['frames']} frames = {secs:.3f} s of audio per sequence; batch {B} sequences; "
          f"stream pushes of {step} frames. Times include the feature upload and the sample "
          "download on both sides.")
    if pt and pt.get("device") and pt["device"] != sdk["device"]:
        print(f"WARNING: PyTorch ran on {pt['device']}, the SDK on {sdk['device']}")
    print()
    print("| case | mode | SDK | PyTorch | SDK vs PyTorch | target |")
    print("|---|---|---:|---:|---:|---|")
    for mode in ("f32", "tf32"):
        s = s_modes.get(mode)
        p = p_modes.get(mode)
        if not s and p:
            print(f"| PyTorch only | {mode} | — | offline {p['offline']['xrt_median']:.1f}x RT, "
                  f"batch {p['batch']['xrt_median']:.0f}x RT, stream p50 / p99 "
                  f"{p['stream'][0]['p50_ms']:.3f} / {p['stream'][0]['p99_ms']:.3f} ms | — | |")
        if not s:
            continue
        so, po = s["offline"], p["offline"] if p else None
        ratio = so["xrt_median"] / po["xrt_median"] if po else None
        print(f"| offline {secs:.0f} s: x real time (RTF) | {mode} | {so['xrt_median']:.1f} "
              f"({so['rtf_median']:.2e}) | "
              + (f"{po['xrt_median']:.1f} ({po['rtf_median']:.2e})" if po else "—")
              + f" | {fmt(ratio, 2)}x | |")
        sb, pb = s["batch"], p["batch"] if p else None
        ratio = sb["xrt_median"] / pb["xrt_median"] if pb else None
        tgt = f"≥ {BATCH_TARGET_XRT:,.0f}x RT: {verdict(sb['xrt_median'] >= BATCH_TARGET_XRT)}"
        if ratio is not None:
            tgt += f"; ≥ {RATIO_TARGET:g}x PyTorch: {verdict(ratio >= RATIO_TARGET)}"
        print(f"| batch {B} x {secs:.0f} s: x real time | {mode} | {sb['xrt_median']:.0f} | "
              + (f"{pb['xrt_median']:.0f}" if pb else "—") + f" | {fmt(ratio, 2)}x | {tgt} |")
        ps = p["stream"][0] if p else None
        for st in sorted(s["stream"], key=lambda x: -x["graph"]):
            label = "CUDA graph" if st["graph"] else "no graph"
            ratio = ps["p50_ms"] / st["p50_ms"] if ps and st["p50_ms"] > 0 else None
            tgt = f"≤ {STEP_TARGET_MS:g} ms: {verdict(st['p50_ms'] <= STEP_TARGET_MS)}"
            if ratio is not None:
                tgt += f"; ≥ {RATIO_TARGET:g}x PyTorch: {verdict(ratio >= RATIO_TARGET)}"
            print(f"| stream {step}, {label}: push p50 / p99 ms | {mode} | "
                  f"{st['p50_ms']:.3f} / {st['p99_ms']:.3f} | "
                  + (f"{ps['p50_ms']:.3f} / {ps['p99_ms']:.3f}" if ps else "—")
                  + f" | {fmt(ratio, 2)}x | {tgt} |")
        for st in sorted(s["stream"], key=lambda x: -x["graph"]):
            label = "CUDA graph" if st["graph"] else "no graph"
            ratio = st["xrt_median"] / ps["xrt_median"] if ps else None
            print(f"| stream {step}, {label}: whole stream x real time | {mode} | "
                  f"{st['xrt_median']:.1f} | " + (f"{ps['xrt_median']:.1f}" if ps else "—")
                  + f" | {fmt(ratio, 2)}x | |")
    print()
    print("Targets as set for an H100; this run's device is named above. PyTorch streams the "
          "naive way (re-running the model on each push's receptive field, nothing cached).")
    print()
    print("Checks (max-abs):")
    for mode in ("f32", "tf32"):
        s, p = s_modes.get(mode), p_modes.get(mode)
        if not s:
            continue
        streams = ", ".join(f"{'graph' if st['graph'] else 'no graph'} "
                            f"{st['max_abs_vs_offline']:.2g}"
                            for st in sorted(s["stream"], key=lambda x: -x["graph"]))
        graphs = [st for st in s["stream"] if st["graph"]]
        line = (f"  {mode}: SDK batch items vs offline {s['batch']['item_max_abs_vs_offline']:.2g}; "
                f"SDK stream vs offline {streams}")
        if graphs:
            line += (f" ({graphs[0]['graph_captures']} graph captures, "
                     f"{graphs[0]['graph_replays']} replays)")
        if p:
            line += (f"; PyTorch stream vs offline {p['stream'][0]['max_abs_vs_offline']:.2g}, "
                     f"batch item 0 vs offline {p['batch']['item_max_abs_vs_offline']:.2g}")
        print(line)
    if pt and "sdk_check" in pt:
        c = pt["sdk_check"]
        print(f"  SDK f32 offline vs PyTorch f32 offline: {c['max_abs_diff']:.3g} (peak "
              f"{c['ref_max_abs']:.3g}; {c['sdk_samples']} vs {c['torch_samples']} samples)")


if __name__ == "__main__":
    main()
