#!/usr/bin/env bash
# FlexiCodec decode benchmark, one command: the SDK's decoder vs the official PyTorch
# `decode_from_codes` on the same random weights, same codes, same machine, in one run.
#
#   1. makes the full released configuration (12hz_v1) with random weights
#      (tools/golden/flexicodec_make_checkpoint.py, about 1.4 GB) and converts it to GGUF, f32
#      and f16 (tools/convert/flexicodec.py), in a scratch folder under the system temp dir;
#   2. runs sotto_bench_flexicodec_decode (f32, f16) and torch_bench.py (float32), one after
#      the other, on 10 s of deterministic random codes (125 frames, 7 RVQ stages);
#   3. prints one table: x real time of SDK and PyTorch per thread count, the ratio, the
#      max-abs difference of the outputs, and the peak RSS of every process.
#
# usage: bench/flexicodec_decode/run.sh [--quick] [--keep] [--out DIR] [--no-f16]
#   --quick       the small random config and 2 s of codes, 2 repetitions (a smoke test)
#   --keep        keep the scratch folder (checkpoint, GGUF files, raw JSON, waveforms)
#   --out DIR     also copy the JSON results and the printed table to DIR
#   --no-f16      skip the f16 conversion and run
# environment: SOTTO_PYTHON (default tools/.venv/bin/python), SOTTO_BENCH_BUILD (default
# build-bench), SOTTO_BENCH_THREADS (default 1,2), SOTTO_BENCH_REPS (default 5),
# SOTTO_BENCH_SECONDS (default 10; 2 with --quick), SOTTO_BENCH_STAGES (default 7).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/bench/flexicodec_decode"
PY=${SOTTO_PYTHON:-$ROOT/tools/.venv/bin/python}
BUILD=${SOTTO_BENCH_BUILD:-$ROOT/build-bench}
THREADS=${SOTTO_BENCH_THREADS:-1,2}
REPS=${SOTTO_BENCH_REPS:-5}
STAGES=${SOTTO_BENCH_STAGES:-7}
AUDIO_S=${SOTTO_BENCH_SECONDS:-}
CONFIG=12hz_v1
KEEP=0
F16=1
OUT=""

die() {
    echo "bench/flexicodec_decode/run.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) CONFIG=small; AUDIO_S=${AUDIO_S:-2}; REPS=${SOTTO_BENCH_REPS:-2} ;;
        --keep) KEEP=1 ;;
        --no-f16) F16=0 ;;
        --out) [ $# -ge 2 ] || die "--out needs a folder"; OUT=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option: $1 (see --help)" ;;
    esac
    shift
done
AUDIO_S=${AUDIO_S:-10}

# ---- prerequisites ---------------------------------------------------------------------------
if [ ! -x "$PY" ]; then
    die "no Python at $PY. Create the tools venv first (see tools/README.md):
    python3 -m venv tools/.venv && tools/.venv/bin/pip install -r tools/requirements.txt
or point SOTTO_PYTHON at an interpreter with torch, flexicodec 0.1.2, gguf, pyyaml, numpy,
safetensors."
fi
if ! "$PY" -c 'import torch, flexicodec.modeling_flexicodec, gguf, yaml, numpy, safetensors' \
    >/dev/null 2>&1; then
    die "$PY lacks a package (torch, flexicodec, gguf, pyyaml, numpy, safetensors);
install tools/requirements.txt into it (see tools/README.md)"
fi
command -v cmake >/dev/null || die "cmake not found"

echo "== build ($BUILD)" >&2
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" -j2 --target sotto_bench_flexicodec_decode >/dev/null
BENCH="$BUILD/bench/sotto_bench_flexicodec_decode"
[ -x "$BENCH" ] || die "build did not produce $BENCH"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sotto-bench-flexicodec.XXXXXX")
cleanup() {
    if [ "$KEEP" = 1 ]; then
        echo "scratch folder kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# ---- the model ---------------------------------------------------------------------------------
echo "== random-weight FlexiCodec checkpoint ($CONFIG) and GGUF conversion" >&2
"$PY" "$ROOT/tools/golden/flexicodec_make_checkpoint.py" "$WORK" --configs "$CONFIG" >&2
CKPT="$WORK/$CONFIG.safetensors"
DTYPES=(f32)
[ "$F16" = 1 ] && DTYPES+=(f16)
for dt in "${DTYPES[@]}"; do
    "$PY" "$ROOT/tools/convert/flexicodec.py" "$CKPT" "$WORK/flexicodec-$dt.gguf" --dtype "$dt" \
        --name "flexicodec-$CONFIG-random" >&2
done

"$PY" "$ROOT/bench/vocos/bench_util.py" machine > "$WORK/machine-start.json"

# ---- the speed runs ----------------------------------------------------------------------------
checks=()
# f16a: the f16 model with binary16 arithmetic (sotto_model_params.f16_arithmetic); the report
# shows it only where the CPU has AVX512-FP16 (elsewhere the flag changes nothing).
RUNS=("${DTYPES[@]}")
[ "$F16" = 1 ] && RUNS+=(f16a)
for dt in "${RUNS[@]}"; do
    echo "== sotto_bench_flexicodec_decode $dt (threads $THREADS, ${AUDIO_S} s, $REPS reps)" >&2
    model="$WORK/flexicodec-$dt.gguf"
    extra=()
    if [ "$dt" = f16a ]; then
        model="$WORK/flexicodec-f16.gguf"
        extra=(--f16-arithmetic)
    fi
    "$BENCH" -m "$model" --seconds "$AUDIO_S" --threads "$THREADS" "${extra[@]}" \
        --reps "$REPS" --stages "$STAGES" --json --dump "$WORK/sdk-$dt.raw" > "$WORK/sdk-$dt.json"
    checks+=(--check-sdk "$dt=$WORK/sdk-$dt.raw")
done
echo "== torch_bench.py (threads $THREADS, ${AUDIO_S} s, $REPS reps)" >&2
"$PY" "$HERE/torch_bench.py" "$WORK" --config "$CONFIG" --seconds "$AUDIO_S" \
    --threads "$THREADS" --reps "$REPS" --stages "$STAGES" --json "${checks[@]}" \
    > "$WORK/torch.json"

"$PY" "$ROOT/bench/vocos/bench_util.py" machine > "$WORK/machine-end.json"

# ---- the table ---------------------------------------------------------------------------------
"$PY" "$HERE/report.py" "$WORK" | tee "$WORK/table.txt"
if [ -n "$OUT" ]; then
    mkdir -p "$OUT"
    cp "$WORK"/*.json "$WORK/table.txt" "$OUT"/
    "$PY" "$HERE/report.py" "$WORK" --markdown > "$OUT/table.md"
    echo "results copied to $OUT" >&2
fi
