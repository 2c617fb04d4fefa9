#!/usr/bin/env bash
# FlexiCodec encode benchmark, one command: the SDK's encoder (sotto_encoder_encode) vs the
# official PyTorch encode (WavFrontend + FlexiCodec.forward(encode_only=True)) on the same
# random weights, same audio, same machine, in one run.
#
#   1. torch_bench.py prepare: 10 s of samples/speech audio (a clip tiled), the full released
#      codec (12hz_v1) and SenseVoice-Small (50 blocks, width 512, FFN 2048) with random
#      weights, an am.mvn; tools/convert/flexicodec.py --with-encoder --sensevoice --am-mvn;
#   2. sotto_bench_flexicodec_encode (it also decodes its groups) then torch_bench.py bench,
#      threshold 0.91, 7 RVQ stages, float32, 1 and 2 threads;
#   3. report.py: x real time per side, ratio, codes agreement, peak RSS, the targets.
#
# usage: bench/flexicodec_encode/run.sh [--quick] [--keep] [--out DIR]
#   --quick     small codec, 3-block SenseVoice, 2 s, 4 stages, 2 reps (a smoke test)
#   --keep      keep the scratch folder
#   --out DIR   also copy the JSON results and the table to DIR
# environment: SOTTO_PYTHON (default tools/.venv/bin/python), SOTTO_BENCH_BUILD (default
# build-bench), SOTTO_BENCH_THREADS (default 1,2), SOTTO_BENCH_REPS (default 3).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/bench/flexicodec_encode"
PY=${SOTTO_PYTHON:-$ROOT/tools/.venv/bin/python}
BUILD=${SOTTO_BENCH_BUILD:-$ROOT/build-bench}
THREADS=${SOTTO_BENCH_THREADS:-1,2}
REPS=${SOTTO_BENCH_REPS:-3}
CONFIG=12hz_v1
SECONDS_AUDIO=10
STAGES=7
QUICK=()
KEEP=0
OUT=""

die() {
    echo "bench/flexicodec_encode/run.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) CONFIG=small; SECONDS_AUDIO=2; STAGES=4; REPS=${SOTTO_BENCH_REPS:-2}; QUICK=(--quick) ;;
        --keep) KEEP=1 ;;
        --out) [ $# -ge 2 ] || die "--out needs a folder"; OUT=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option: $1 (see --help)" ;;
    esac
    shift
done

[ -x "$PY" ] || die "no Python at $PY (see tools/README.md)"
"$PY" -c 'import torch, funasr, flexicodec.modeling_flexicodec, gguf, yaml, soundfile' \
    >/dev/null 2>&1 || die "$PY lacks a package (torch, funasr, flexicodec, gguf, pyyaml, soundfile)"
command -v cmake >/dev/null || die "cmake not found"

echo "== build ($BUILD)" >&2
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" -j2 --target sotto_bench_flexicodec_encode >/dev/null
BENCH="$BUILD/bench/sotto_bench_flexicodec_encode"
[ -x "$BENCH" ] || die "build did not produce $BENCH"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sotto-bench-flexicodec-enc.XXXXXX")
cleanup() {
    if [ "$KEEP" = 1 ]; then echo "scratch folder kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

echo "== audio, random-weight codec ($CONFIG) + SenseVoice, GGUF conversion" >&2
"$PY" "$HERE/torch_bench.py" prepare "$WORK" --config "$CONFIG" --seconds "$SECONDS_AUDIO" \
    "${QUICK[@]}" >&2
"$PY" "$ROOT/tools/convert/flexicodec.py" "$WORK/$CONFIG.safetensors" "$WORK/model.gguf" \
    --with-encoder --sensevoice "$WORK/sensevoice.pt" --am-mvn "$WORK/am.mvn" \
    --name "flexicodec-$CONFIG-random" >&2

# The same weights in f16, run with binary16 arithmetic in the encoder and decoder
# (f16_arithmetic = 2): the report adds it where the CPU has AVX512-FP16.
"$PY" "$ROOT/tools/convert/flexicodec.py" "$WORK/$CONFIG.safetensors" "$WORK/model-f16.gguf" \
    --with-encoder --sensevoice "$WORK/sensevoice.pt" --am-mvn "$WORK/am.mvn" --dtype f16 \
    --name "flexicodec-$CONFIG-random" >&2

"$PY" "$ROOT/bench/vocos/bench_util.py" machine > "$WORK/machine-start.json"
echo "== sotto_bench_flexicodec_encode (threads $THREADS, $REPS reps)" >&2
"$BENCH" -m "$WORK/model.gguf" -w "$WORK/wave.f32" --threads "$THREADS" --reps "$REPS" \
    --stages "$STAGES" --threshold 0.91 --json --dump "$WORK/codes.bin" > "$WORK/sdk.json"
echo "== sotto_bench_flexicodec_encode, f16 model, binary16 arithmetic" >&2
"$BENCH" -m "$WORK/model-f16.gguf" -w "$WORK/wave.f32" --threads "$THREADS" --reps "$REPS" \
    --stages "$STAGES" --threshold 0.91 --json --dump "$WORK/codes-h16.bin" --f16-arithmetic \
    > "$WORK/sdk-h16.json"
echo "== torch_bench.py (threads $THREADS, $REPS reps)" >&2
"$PY" "$HERE/torch_bench.py" bench "$WORK" --config "$CONFIG" --threads "$THREADS" \
    --reps "$REPS" --stages "$STAGES" --threshold 0.91 --json --check-sdk "$WORK/codes.bin" \
    --check-sdk-h16 "$WORK/codes-h16.bin" > "$WORK/torch.json"
"$PY" "$ROOT/bench/vocos/bench_util.py" machine > "$WORK/machine-end.json"

"$PY" "$HERE/report.py" "$WORK" | tee "$WORK/table.txt"
if [ -n "$OUT" ]; then
    mkdir -p "$OUT"
    cp "$WORK"/*.json "$WORK/table.txt" "$OUT"/
    "$PY" "$HERE/report.py" "$WORK" --markdown > "$OUT/table.md"
    echo "results copied to $OUT" >&2
fi
