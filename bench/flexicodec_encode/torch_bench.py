"""PyTorch side of the FlexiCodec encode benchmark, and the model/audio preparation.

`torch_bench.py prepare DIR [--config 12hz_v1] [--seconds S]` writes to DIR:
- wave.f32: S seconds of 16 kHz audio, raw float32: the clip samples/speech/CLIP tiled
  (both sides encode exactly these samples);
- <config>.safetensors + <config>_config.yaml: the codec with random weights
  (tools/golden/flexicodec_make_checkpoint.py: build + randomize), the DAC encoder's gains
  calibrated on the wave (tools/golden/flexicodec_encode.calibrate_encoder);
- sensevoice.pt: SenseVoice-Small at the released size (560 -> 512, 4 heads, FFN 2048,
  50 blocks of which 20 tp blocks, FSMN kernel 11, vocabulary 25055) with random weights drawn
  f16-representable (tools/golden/sensevoice.randomise); with --quick 2 + 1 blocks, FFN 256;
- am.mvn: CMVN from the wave's own LFR statistics (tools/golden/sensevoice.write_mvn).
run.sh converts these with tools/convert/flexicodec.py --with-encoder --sensevoice --am-mvn.

`torch_bench.py bench DIR [--config ...] [--threads 1,2] [--reps N] [--stages N]
[--threshold T] [--json] [--check-sdk FILE]` times the official encode as
tools/golden/flexicodec_encode_audio.py calls it: FunASR's WavFrontend (am.mvn, LFR 7/6,
80 mels, hamming, dither 0) then `FlexiCodec.forward({"audio", "x", "manual_threshold"},
encode_only=True)` with the SenseVoice model attached as `semantic_model`; float32,
torch.inference_mode, torch.set_num_threads(N), one inter-op thread. Best and median of --reps
after one untimed warm-up per thread count. --check-sdk: the SDK's codes (the binary dump of
sotto_bench_flexicodec_encode --dump: int32 G, n_stages, then lengths[G], fsq[G],
rvq[G][n_stages]) compared with PyTorch's (first n_stages RVQ stages).
"""

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
GOLDEN = os.path.join(REPO, "tools", "golden")
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.abspath(GOLDEN)]
STDOUT, sys.stdout = sys.stdout, sys.stderr

import numpy as np  # noqa: E402
import torch  # noqa: E402
import flexicodec  # noqa: E402,F401
import flexicodec.modeling_flexicodec  # noqa: E402,F401

import importlib.util  # noqa: E402

# bench/flexicodec_decode/torch_bench.py (same file name as this one: imported by path) for
# blas_info, parse_list and peak_rss_kb; it takes tools/golden off sys.path, so add it after.
_spec = importlib.util.spec_from_file_location(
    "sotto_flexicodec_decode_torch_bench",
    os.path.join(REPO, "bench", "flexicodec_decode", "torch_bench.py"))
_dec = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_dec)
blas_info, parse_list, peak_rss_kb = _dec.blas_info, _dec.parse_list, _dec.peak_rss_kb
sys.path.append(GOLDEN)
import flexicodec_make_checkpoint as mk  # noqa: E402

CLIP = "cmuarctic_aew_a0001_16k.flac"
SEED = 20251210
SV_FULL = dict(output_size=512, attention_heads=4, linear_units=2048, num_blocks=50,
               tp_blocks=20, kernel_size=11, sanm_shfit=0, normalize_before=True)
SV_QUICK = dict(SV_FULL, linear_units=256, num_blocks=2, tp_blocks=1)
VOCAB = 25055


def frontend(mvn):
    from funasr.frontends.wav_frontend import WavFrontend
    return WavFrontend(cmvn_file=mvn, n_mels=80, frame_length=25, frame_shift=10,
                       lfr_m=7 if mvn else 1, lfr_n=6 if mvn else 1, dither=0.0)


def build_sensevoice(conf):
    from flexicodec.customized_sensevoice.model import SenseVoiceSmall
    sv = SenseVoiceSmall(encoder="SenseVoiceEncoderSmall", input_size=560, vocab_size=VOCAB,
                         encoder_conf=dict(conf))
    return sv.eval()


def prepare(args):
    import soundfile as sf
    import sensevoice as svg
    import flexicodec_encode as fe
    from funasr.frontends.wav_frontend import apply_lfr

    torch.set_num_threads(2)
    os.makedirs(args.dir, exist_ok=True)
    x, sr = sf.read(os.path.join(REPO, "samples", "speech", CLIP), dtype="float32",
                    always_2d=True)
    assert sr == 16000, sr
    x = x[:, 0]
    n = int(round(args.seconds * 16000))
    wave = np.ascontiguousarray(np.tile(x, n // len(x) + 1)[:n].astype(np.float32))
    wave.tofile(os.path.join(args.dir, "wave.f32"))
    w = torch.from_numpy(wave)
    g = torch.Generator().manual_seed(SEED)

    fb = frontend(None)(w[None], [n])[0][0]
    lfr = apply_lfr(fb.clone(), 7, 6)
    mean, std = lfr.mean(0), lfr.std(0) + 1e-3
    svg.write_mvn(os.path.join(args.dir, "am.mvn"), (-mean).numpy(), (1.0 / std).numpy())

    sv = build_sensevoice(SV_QUICK if args.quick else SV_FULL)
    svg.randomise(sv, g)
    torch.save(sv.state_dict(), os.path.join(args.dir, "sensevoice.pt"))
    del sv

    torch.manual_seed(SEED)
    model = mk.randomize(mk.build(args.config), SEED)
    fe.calibrate_encoder(model, w)
    mk.save(model, args.config, args.dir)
    print(f"prepared {args.dir}: {n} samples, config {args.config}", file=sys.stderr)
    return 0


def bench(args):
    rss_import = peak_rss_kb()
    torch.set_num_interop_threads(1)
    mvn = os.path.join(args.dir, "am.mvn")
    wave = torch.from_numpy(np.fromfile(os.path.join(args.dir, "wave.f32"), dtype=np.float32))
    n = wave.numel()
    t0 = time.perf_counter()
    model = mk.load_official(args.dir, args.config)
    sd = torch.load(os.path.join(args.dir, "sensevoice.pt"), map_location="cpu")
    nb = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("encoder.encoders."))
    conf = SV_FULL if nb + 1 >= SV_FULL["num_blocks"] else SV_QUICK
    sv = build_sensevoice(conf)
    sv.load_state_dict(sd)
    del sd
    model.semantic_model = sv
    model.eval()
    fe_mod = frontend(mvn)
    load_s = time.perf_counter() - t0
    rss_model = peak_rss_kb()
    sys.stdout = STDOUT

    def encode():
        feats = fe_mod(wave[None], [n])[0][0]
        return model.forward({"audio": wave[None], "x": feats[None],
                              "manual_threshold": args.threshold}, encode_only=True)

    blas = blas_info()
    result = {
        "bench": "flexicodec_encode", "side": "pytorch", "config": args.config,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "flexicodec": importlib.metadata.version("flexicodec"),
                     "numpy": np.__version__},
        "blas": blas, "audio_samples": int(n), "audio_seconds": n / 16000.0,
        "threshold": args.threshold, "reps": args.reps, "load_s": load_s,
        "sensevoice_blocks": conf["num_blocks"],
        "model_parameters": sum(p.numel() for p in model.parameters()),
        "rss_after_import_kb": rss_import, "rss_after_model_kb": rss_model, "runs": [],
    }
    ref = None
    with torch.inference_mode():
        for nt in args.threads:
            torch.set_num_threads(nt)
            run = {"threads": nt}
            t0 = time.perf_counter()
            out = encode()
            run["warmup_s"] = time.perf_counter() - t0
            if ref is None:
                ref = out
            times = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                encode()
                times.append(time.perf_counter() - t0)
            times.sort()
            med = float(np.median(times))
            run.update({"best_s": times[0], "median_s": med,
                        "xrt_best": result["audio_seconds"] / times[0],
                        "xrt_median": result["audio_seconds"] / med,
                        "rtf_median": med / result["audio_seconds"],
                        "peak_rss_kb": peak_rss_kb()})
            result["runs"].append(run)
            if not args.json:
                print(f"  threads {nt}: {run['xrt_median']:.2f} x RT", flush=True)

    lengths = ref.token_lengths[0].long().numpy()
    fsq = ref.semantic_codes[0, 0].long().numpy()
    n_q = int(ref.acoustic_codes.shape[1])
    stages = min(args.stages, n_q)
    rvq = ref.acoustic_codes[0, :stages].transpose(0, 1).long().numpy()  # [G][stages]
    result.update({"groups": int(len(lengths)), "frames": int(lengths.sum()),
                   "stages": stages, "model_stages": n_q})
    for key, path in (("sdk_check", args.check_sdk), ("sdk_check_h16", args.check_sdk_h16)):
        if not path or not os.path.exists(path):
            continue
        d = np.fromfile(path, dtype=np.int32)
        G, S = int(d[0]), int(d[1])
        sl, sf_, sr_ = d[2:2 + G], d[2 + G:2 + 2 * G], d[2 + 2 * G:2 + 2 * G + G * S].reshape(G, S)
        m, s = min(G, len(lengths)), min(S, stages)
        result[key] = {
            "sdk_groups": G, "torch_groups": int(len(lengths)), "sdk_stages": S,
            "lengths_equal": int((sl[:m] == lengths[:m]).sum()), "lengths_total": int(len(lengths)),
            "lengths_identical": bool(G == len(lengths) and (sl == lengths).all()),
            "fsq_equal": int((sf_[:m] == fsq[:m]).sum()), "fsq_total": int(len(fsq)),
            "rvq_equal": int((sr_[:m, :s] == rvq[:m, :s]).sum()), "rvq_total": int(rvq.size),
            "rvq_equal_stage0": int((sr_[:m, 0] == rvq[:m, 0]).sum()) if s else 0,
        }
    result["peak_rss_kb"] = peak_rss_kb()
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{n} samples, {result['groups']} groups ({result['frames']} frames), "
          f"{stages} of {n_q} stages")
    for r in result["runs"]:
        print(f"threads {r['threads']}: median {r['median_s']:.3f} s, {r['xrt_median']:.2f} x RT")
    if "sdk_check" in result:
        print("SDK check:", result["sdk_check"])
    print(f"peak RSS {result['peak_rss_kb'] / 1024:.1f} MiB")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("prepare", "bench"))
    ap.add_argument("dir")
    ap.add_argument("--config", default="12hz_v1")
    ap.add_argument("--quick", action="store_true", help="prepare: a 3-block SenseVoice")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=parse_list, default=[1, 2])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--stages", type=int, default=7)
    ap.add_argument("--threshold", type=float, default=0.91)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--check-sdk", metavar="FILE")
    ap.add_argument("--check-sdk-h16", metavar="FILE",
                    help="the same for the SDK's binary16-arithmetic run")
    args = ap.parse_args()
    return prepare(args) if args.mode == "prepare" else bench(args)


if __name__ == "__main__":
    sys.exit(main())
