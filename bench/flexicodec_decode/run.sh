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
# With --gpu N both sides decode on CUDA device N: the SDK loads the model with backend CUDA
# (the bottleneck transformer and the DAC decoder on the GPU, in f32 whatever the file's
# dtype; the group stages on the CPU), PyTorch runs decode_from_codes with the model and the
# codes on cuda:N. Only the f32 model by default (--f16 adds the f16 file; there is no binary16
# row), the build folder must have the CUDA backend (default build-bench-gpu, configured with
# SOTTO_CUDA=ON), and the script stops before anything else when torch sees no device N. A
# failed side leaves the other in the table (exit status 1). Nothing has run on a GPU yet.
#
# usage: bench/flexicodec_decode/run.sh [--quick] [--keep] [--out DIR] [--no-f16]
#                                       [--gpu N [--f16]]
#   --quick       the small random config and 2 s of codes, 2 repetitions (a smoke test)
#   --keep        keep the scratch folder (checkpoint, GGUF files, raw JSON, waveforms)
#   --out DIR     also copy the JSON results and the printed table to DIR
#   --no-f16      skip the f16 conversion and run
#   --gpu N       both sides on CUDA device N (above)
#   --f16         with --gpu: also the f16 model
# environment: SOTTO_PYTHON (default tools/.venv/bin/python), SOTTO_BENCH_BUILD (default
# build-bench; build-bench-gpu with --gpu), SOTTO_BENCH_THREADS (default 1,2; on a GPU the
# CPU threads of both sides), SOTTO_BENCH_REPS (default 5), SOTTO_BENCH_SECONDS (default 10;
# 2 with --quick), SOTTO_BENCH_STAGES (default 7), SOTTO_CUDA_ARCH (CMAKE_CUDA_ARCHITECTURES
# of a fresh --gpu build folder, e.g. 90).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/bench/flexicodec_decode"
PY=${SOTTO_PYTHON:-$ROOT/tools/.venv/bin/python}
BUILD=${SOTTO_BENCH_BUILD:-}
THREADS=${SOTTO_BENCH_THREADS:-1,2}
REPS=${SOTTO_BENCH_REPS:-5}
STAGES=${SOTTO_BENCH_STAGES:-7}
AUDIO_S=${SOTTO_BENCH_SECONDS:-}
CONFIG=12hz_v1
KEEP=0
F16=""
OUT=""
GPU=""
FAILED=0

die() {
    echo "bench/flexicodec_decode/run.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) CONFIG=small; AUDIO_S=${AUDIO_S:-2}; REPS=${SOTTO_BENCH_REPS:-2} ;;
        --keep) KEEP=1 ;;
        --no-f16) F16=0 ;;
        --f16) F16=1 ;;
        --gpu)
            [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || die "--gpu needs a device index (0, 1, ...)"
            GPU=$2; shift ;;
        --out) [ $# -ge 2 ] || die "--out needs a folder"; OUT=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option: $1 (see --help)" ;;
    esac
    shift
done
AUDIO_S=${AUDIO_S:-10}
if [ -z "$GPU" ]; then
    F16=${F16:-1}
    BUILD=${BUILD:-$ROOT/build-bench}
else
    F16=${F16:-0}
    BUILD=${BUILD:-$ROOT/build-bench-gpu}
fi

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
if [ -n "$GPU" ]; then
    # Before anything costly: the device must be there for PyTorch (and so for the SDK).
    if ! "$PY" - "$GPU" >&2 <<'EOF'
import sys
import torch
n = torch.cuda.device_count() if torch.cuda.is_available() else 0
if int(sys.argv[1]) >= n:
    sys.exit(f"torch {torch.__version__} (built for CUDA {torch.version.cuda}) sees "
             f"{n or 'no'} CUDA device{'s' if n != 1 else ''}")
EOF
    then
        smi=$(nvidia-smi -L 2>&1 | head -4) || smi=""
        die "--gpu $GPU: no CUDA device $GPU here (above)${smi:+; nvidia-smi -L: $smi}"
    fi
fi

echo "== build ($BUILD)" >&2
if [ -z "$GPU" ]; then
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
        cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    cmake --build "$BUILD" -j2 --target sotto_bench_flexicodec_decode >/dev/null
else
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
        args=(-DSOTTO_CUDA=ON -DCMAKE_BUILD_TYPE=Release -DSOTTO_APPS=OFF -DSOTTO_TESTS=OFF)
        [ -n "${SOTTO_CUDA_ARCH:-}" ] && args+=("-DCMAKE_CUDA_ARCHITECTURES=$SOTTO_CUDA_ARCH")
        cmake -S "$ROOT" -B "$BUILD" "${args[@]}" >&2 || die "configure of $BUILD failed"
    elif grep -q '^SOTTO_CUDA:STRING=OFF$' "$BUILD/CMakeCache.txt" ||
        ! grep -Eq '^CMAKE_CUDA_COMPILER:[A-Z]+=.' "$BUILD/CMakeCache.txt" ||
        grep -q '^CMAKE_CUDA_COMPILER:.*NOTFOUND' "$BUILD/CMakeCache.txt"; then
        die "$BUILD has no CUDA backend; point SOTTO_BENCH_BUILD at a new folder"
    fi
    cmake --build "$BUILD" -j"$(nproc 2>/dev/null || echo 2)" \
        --target sotto_bench_flexicodec_decode >&2 || die "build failed"
fi
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
if [ -n "$GPU" ]; then
    nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader \
        > "$WORK/gpu.csv" 2>/dev/null || rm -f "$WORK/gpu.csv"
fi

# ---- the speed runs ----------------------------------------------------------------------------
checks=()
# f16a: the f16 model with binary16 arithmetic (sotto_model_params.f16_arithmetic); the report
# shows it only where the CPU has AVX512-FP16 (elsewhere the flag changes nothing).
RUNS=("${DTYPES[@]}")
[ "$F16" = 1 ] && [ -z "$GPU" ] && RUNS+=(f16a)
if [ -n "$GPU" ]; then
    # On a GPU a failed side leaves the other one in the table; the exit status says so.
    for dt in "${RUNS[@]}"; do
        echo "== sotto_bench_flexicodec_decode $dt on CUDA device $GPU (threads $THREADS," \
            "${AUDIO_S} s, $REPS reps)" >&2
        if "$BENCH" -m "$WORK/flexicodec-$dt.gguf" --gpu "$GPU" --seconds "$AUDIO_S" \
            --threads "$THREADS" --reps "$REPS" --stages "$STAGES" --json \
            --dump "$WORK/sdk-$dt.raw" > "$WORK/sdk-$dt.json"; then
            checks+=(--check-sdk "$dt=$WORK/sdk-$dt.raw")
        else
            echo "bench/flexicodec_decode/run.sh: the SDK's $dt run failed (above)" >&2
            FAILED=1
            rm -f "$WORK/sdk-$dt.json"
        fi
    done
    echo "== torch_bench.py on cuda:$GPU (threads $THREADS, ${AUDIO_S} s, $REPS reps)" >&2
    if ! "$PY" "$HERE/torch_bench.py" "$WORK" --config "$CONFIG" --seconds "$AUDIO_S" \
        --threads "$THREADS" --reps "$REPS" --stages "$STAGES" --device "cuda:$GPU" --json \
        ${checks[@]+"${checks[@]}"} > "$WORK/torch.json"; then
        echo "bench/flexicodec_decode/run.sh: torch_bench.py --device cuda:$GPU failed (above)" >&2
        FAILED=1
        rm -f "$WORK/torch.json"
    fi
    "$PY" "$ROOT/bench/vocos/bench_util.py" machine > "$WORK/machine-end.json"
    "$PY" "$HERE/report.py" "$WORK" | tee "$WORK/table.txt"
    if [ -n "$OUT" ]; then
        mkdir -p "$OUT"
        cp "$WORK"/*.json "$WORK/table.txt" "$OUT"/
        if [ -f "$WORK/gpu.csv" ]; then cp "$WORK/gpu.csv" "$OUT"/; fi
        "$PY" "$HERE/report.py" "$WORK" --markdown > "$OUT/table.md"
        echo "results copied to $OUT" >&2
    fi
    exit "$FAILED"
fi
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
