#!/usr/bin/env bash
# Vocos benchmark, one command: SDK vs the official PyTorch model on the same random weights,
# same features, same machine, in one run.
#
#   1. makes the vocos-mel-24khz random-weight checkpoint (tools/golden/vocos_make_checkpoint.py)
#      and converts it to GGUF, f32 and f16 (tools/convert/vocos.py), in a scratch folder;
#   2. runs sotto_bench_vocos (f32, f16) and torch_bench.py (float32), one after the other;
#   3. runs `sotto vocode` on a 10-minute 24 kHz file under /usr/bin/time -v for its peak RSS;
#   4. prints one table: x real time of SDK and PyTorch per case and thread count, the ratio,
#      per-call latency, and peak RSS of every process.
#
# usage: bench/vocos/run.sh [--quick] [--keep] [--out DIR] [--speech DIR] [--no-long]
#   --quick       2 s of audio, fewer repetitions, a 1-minute long file (a smoke test)
#   --keep        keep the scratch folder (checkpoint, GGUF files, raw JSON)
#   --out DIR     also copy the JSON results and the printed table to DIR
#   --speech DIR  speech clips for the long file (default $SOTTO_SPEECH_DIR, else
#                 ../shared/data/speech beside the repository; synthetic audio if absent)
#   --no-long     skip the long-file memory run
# environment: SOTTO_PYTHON (default tools/.venv/bin/python), SOTTO_BENCH_BUILD (default
# build-bench), SOTTO_BENCH_THREADS (default 1,2), SOTTO_BENCH_CHUNKS (default 1,4,16).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/bench/vocos"
PY=${SOTTO_PYTHON:-$ROOT/tools/.venv/bin/python}
BUILD=${SOTTO_BENCH_BUILD:-$ROOT/build-bench}
THREADS=${SOTTO_BENCH_THREADS:-1,2}
CHUNKS=${SOTTO_BENCH_CHUNKS:-1,4,16}
SPEECH=${SOTTO_SPEECH_DIR:-$ROOT/../shared/data/speech}
AUDIO_S=10
REPS=5
STREAM_REPS=3
TORCH_STREAM_REPS=1
LONG_MIN=10
KEEP=0
LONG=1
OUT=""

die() {
    echo "bench/vocos/run.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) AUDIO_S=2; REPS=2; STREAM_REPS=1; LONG_MIN=1 ;;
        --keep) KEEP=1 ;;
        --no-long) LONG=0 ;;
        --out) [ $# -ge 2 ] || die "--out needs a folder"; OUT=$2; shift ;;
        --speech) [ $# -ge 2 ] || die "--speech needs a folder"; SPEECH=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option: $1 (see --help)" ;;
    esac
    shift
done

# ---- prerequisites ---------------------------------------------------------------------------
if [ ! -x "$PY" ]; then
    die "no Python at $PY. Create the tools venv first (see tools/README.md):
    python3 -m venv tools/.venv && tools/.venv/bin/pip install -r tools/requirements.txt
or point SOTTO_PYTHON at an interpreter with torch, vocos, gguf, pyyaml, numpy, soundfile."
fi
if ! "$PY" -c 'import torch, vocos.pretrained, gguf, yaml, numpy, soundfile, scipy' 2>/dev/null
then
    die "$PY lacks a package (torch, vocos, gguf, pyyaml, numpy, soundfile, scipy);
install tools/requirements.txt into it (see tools/README.md)"
fi
command -v cmake >/dev/null || die "cmake not found"

echo "== build ($BUILD)" >&2
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" -j2 --target sotto_bench_vocos sotto_cli >/dev/null
BENCH="$BUILD/bench/sotto_bench_vocos"
SOTTO="$BUILD/apps/sotto"
[ -x "$BENCH" ] || die "build did not produce $BENCH"
[ -x "$SOTTO" ] || die "build did not produce $SOTTO"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sotto-bench-vocos.XXXXXX")
cleanup() {
    if [ "$KEEP" = 1 ]; then
        echo "scratch folder kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# ---- the model ---------------------------------------------------------------------------------
echo "== random-weight vocos-mel-24khz checkpoint and GGUF conversion" >&2
"$PY" "$ROOT/tools/golden/vocos_make_checkpoint.py" "$WORK" --configs vocos-mel-24khz >&2
CKPT="$WORK/vocos-mel-24khz"
"$PY" "$ROOT/tools/convert/vocos.py" "$CKPT" "$WORK/vocos-mel-24khz-f32.gguf" >&2
"$PY" "$ROOT/tools/convert/vocos.py" "$CKPT" "$WORK/vocos-mel-24khz-f16.gguf" --dtype f16 >&2

"$PY" "$HERE/bench_util.py" machine > "$WORK/machine-start.json"

# ---- the speed runs ----------------------------------------------------------------------------
# f16a: the f16 model with binary16 arithmetic (sotto_model_params.f16_arithmetic); the
# report shows it only where the CPU has AVX512-FP16 (elsewhere the flag changes nothing).
for dt in f32 f16 f16a; do
    echo "== sotto_bench_vocos $dt (threads $THREADS, chunks $CHUNKS, ${AUDIO_S} s)" >&2
    extra=(--dump "$WORK/sdk-offline-$dt.raw")
    model="$WORK/vocos-mel-24khz-$dt.gguf"
    if [ "$dt" = f16a ]; then
        extra+=(--f16-arithmetic)
        model="$WORK/vocos-mel-24khz-f16.gguf"
    fi
    "$BENCH" -m "$model" --seconds "$AUDIO_S" --threads "$THREADS" \
        --chunks "$CHUNKS" --reps "$REPS" --stream-reps "$STREAM_REPS" --json "${extra[@]}" \
        > "$WORK/sdk-$dt.json"
done
echo "== torch_bench.py (threads $THREADS, chunks $CHUNKS, ${AUDIO_S} s)" >&2
"$PY" "$HERE/torch_bench.py" "$CKPT" --seconds "$AUDIO_S" --threads "$THREADS" \
    --chunks "$CHUNKS" --reps "$REPS" --stream-reps "$TORCH_STREAM_REPS" --json \
    --check-sdk "$WORK/sdk-offline-f32.raw" > "$WORK/torch.json"

# ---- memory on a long file ---------------------------------------------------------------------
if [ "$LONG" = 1 ]; then
    echo "== sotto vocode on a ${LONG_MIN}-minute 24 kHz file" >&2
    "$PY" "$HERE/bench_util.py" long-wav "$WORK/long.wav" --minutes "$LONG_MIN" \
        --speech "$SPEECH" > "$WORK/long-wav.json"
    for dt in f32 f16; do
        if [ -x /usr/bin/time ]; then
            /usr/bin/time -v -o "$WORK/vocode-$dt.time" "$SOTTO" vocode "$WORK/long.wav" \
                -o "$WORK/long-out.wav" -m "$WORK/vocos-mel-24khz-$dt.gguf" --json \
                > "$WORK/vocode-$dt.json"
        else
            # No GNU time: the same figure from the parent's getrusage(RUSAGE_CHILDREN).
            "$PY" "$HERE/bench_util.py" time-v "$WORK/vocode-$dt.time" -- "$SOTTO" vocode \
                "$WORK/long.wav" -o "$WORK/long-out.wav" -m "$WORK/vocos-mel-24khz-$dt.gguf" \
                --json > "$WORK/vocode-$dt.json"
        fi
        rm -f "$WORK/long-out.wav"
    done
fi

"$PY" "$HERE/bench_util.py" machine > "$WORK/machine-end.json"

# ---- the table ---------------------------------------------------------------------------------
"$PY" "$HERE/bench_util.py" report "$WORK" | tee "$WORK/table.txt"
if [ -n "$OUT" ]; then
    mkdir -p "$OUT"
    cp "$WORK"/*.json "$WORK"/*.time "$WORK/table.txt" "$OUT"/ 2>/dev/null || true
    echo "results copied to $OUT" >&2
fi
