#!/usr/bin/env bash
# Vocos on a CUDA GPU, one command: the SDK's CUDA forward (sotto_bench_vocos_gpu) against the
# official PyTorch model (torch_bench.py) on the same GPU, same random weights, same features,
# in one run, then one table with the ratios (report.py). Nothing here has run on a GPU yet.
#
#   1. the model: the random-weight vocos-mel-24khz checkpoint
#      (tools/golden/vocos_make_checkpoint.py) and its f32 GGUF (tools/convert/vocos.py),
#      made in a scratch folder, or taken from --prepared DIR (made earlier with
#      --prepare-only DIR, e.g. on a machine with the Python packages);
#   2. builds sotto_bench_vocos_gpu (CUDA backend) in the build folder unless it is there;
#   3. runs sotto_bench_vocos_gpu, then torch_bench.py: offline (--seconds of audio), a batch
#      of sequences, streaming pushes of a few frames (the SDK with and without CUDA graphs,
#      PyTorch the naive way), each in f32 and TF32;
#   4. prints the table.
#
# usage: bench/vocos_gpu/run.sh [--prepared DIR] [--py DIR] [--out DIR] [--build DIR]
#                               [--quick] [--keep] [--no-torch]
#        bench/vocos_gpu/run.sh --prepare-only DIR [--py DIR]
#        bench/vocos_gpu/run.sh --pack-python DIR
#   --prepared DIR      use DIR/vocos-mel-24khz/ (config.yaml, pytorch_model.bin) and
#                       DIR/vocos-mel-24khz-f32.gguf instead of making them
#   --prepare-only DIR  make those files in DIR and stop (needs torch, vocos, encodec, gguf,
#                       pyyaml)
#   --pack-python DIR   copy the pure-Python packages vocos, encodec and gguf of this Python
#                       into DIR and stop: carry DIR to a machine without network and pass it
#                       there with --py DIR (it has torch, numpy, scipy, pyyaml itself)
#   --py DIR            put DIR first on PYTHONPATH (packages carried with --pack-python)
#   --out DIR           copy sdk.json, torch.json and table.txt to DIR
#   --build DIR         build folder (default $SOTTO_BENCH_BUILD, else build-bench-gpu)
#   --quick             2 s of audio, batch 8, fewer repetitions (a smoke test)
#   --keep              keep the scratch folder
#   --no-torch          only the SDK side
# environment: SOTTO_PYTHON (default tools/.venv/bin/python when it exists, else python3),
# SOTTO_CUDA_ARCH (CMAKE_CUDA_ARCHITECTURES of a fresh build folder, e.g. 90),
# SOTTO_BENCH_SECONDS (10), SOTTO_BENCH_BATCH (64), SOTTO_BENCH_STEP (4),
# SOTTO_BENCH_MODES (f32,tf32).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/bench/vocos_gpu"
if [ -n "${SOTTO_PYTHON:-}" ]; then
    PY=$SOTTO_PYTHON
elif [ -x "$ROOT/tools/.venv/bin/python" ]; then
    PY=$ROOT/tools/.venv/bin/python
else
    PY=python3
fi
BUILD=${SOTTO_BENCH_BUILD:-$ROOT/build-bench-gpu}
SECONDS_AUDIO=${SOTTO_BENCH_SECONDS:-10}
BATCH=${SOTTO_BENCH_BATCH:-64}
STEP=${SOTTO_BENCH_STEP:-4}
MODES=${SOTTO_BENCH_MODES:-f32,tf32}
REPS=5
STREAM_REPS=3
PREPARED=""
PREPARE_ONLY=""
PACK=""
PYDIR=""
OUT=""
KEEP=0
TORCH=1
SDK_FAILED=0
NAME=vocos-mel-24khz

die() {
    echo "bench/vocos_gpu/run.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prepared) [ $# -ge 2 ] || die "--prepared needs a folder"; PREPARED=$2; shift ;;
        --prepare-only) [ $# -ge 2 ] || die "--prepare-only needs a folder"; PREPARE_ONLY=$2; shift ;;
        --pack-python) [ $# -ge 2 ] || die "--pack-python needs a folder"; PACK=$2; shift ;;
        --py) [ $# -ge 2 ] || die "--py needs a folder"; PYDIR=$(cd "$2" && pwd); shift ;;
        --out) [ $# -ge 2 ] || die "--out needs a folder"; OUT=$2; shift ;;
        --build) [ $# -ge 2 ] || die "--build needs a folder"; BUILD=$2; shift ;;
        --quick) SECONDS_AUDIO=2; BATCH=8; REPS=2; STREAM_REPS=1 ;;
        --keep) KEEP=1 ;;
        --no-torch) TORCH=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option: $1 (see --help)" ;;
    esac
    shift
done
if [ -n "$PYDIR" ]; then
    export PYTHONPATH="$PYDIR${PYTHONPATH:+:$PYTHONPATH}"
fi
command -v "$PY" >/dev/null 2>&1 || [ -x "$PY" ] || die "no Python at $PY (set SOTTO_PYTHON)"

# ---- carrying the Python packages --------------------------------------------------------------
if [ -n "$PACK" ]; then
    mkdir -p "$PACK"
    "$PY" - "$PACK" <<'EOF'
import importlib.util, os, shutil, sys
dest = sys.argv[1]
for name in ("vocos", "encodec", "gguf"):
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        print(f"  {name}: not installed here, not packed", file=sys.stderr)
        continue
    src = list(spec.submodule_search_locations)[0]
    shutil.copytree(src, os.path.join(dest, name), dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    print(f"  {name}: copied", file=sys.stderr)
EOF
    echo "packed into $PACK; pass it with --py $PACK (bench/vocos_gpu/run.sh or tools/gpu-check.sh)" >&2
    exit 0
fi

# ---- the model ---------------------------------------------------------------------------------
make_model() { # $1: folder to write the checkpoint folder and the GGUF into
    if ! "$PY" -c 'import torch, yaml, gguf, vocos.pretrained' 2>/dev/null; then
        die "$PY cannot make the model: it needs torch, pyyaml, gguf and the whole vocos
package (with encodec). Carry them with --pack-python DIR / --py DIR, or make the model
elsewhere with --prepare-only DIR and pass --prepared DIR."
    fi
    echo "== random-weight $NAME checkpoint and f32 GGUF in $1" >&2
    "$PY" "$ROOT/tools/golden/vocos_make_checkpoint.py" "$1" --configs "$NAME" >&2
    "$PY" "$ROOT/tools/convert/vocos.py" "$1/$NAME" "$1/$NAME-f32.gguf" >&2
}

if [ -n "$PREPARE_ONLY" ]; then
    mkdir -p "$PREPARE_ONLY"
    make_model "$PREPARE_ONLY"
    echo "prepared $PREPARE_ONLY; use it with --prepared $PREPARE_ONLY" >&2
    exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sotto-bench-vocos-gpu.XXXXXX")
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    if [ "$KEEP" = 1 ]; then
        echo "scratch folder kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

if [ -n "$PREPARED" ]; then
    MODEL_DIR=$(cd "$PREPARED" && pwd)
    for f in "$NAME/config.yaml" "$NAME/pytorch_model.bin" "$NAME-f32.gguf"; do
        [ -f "$MODEL_DIR/$f" ] || die "--prepared $PREPARED lacks $f (make it with --prepare-only)"
    done
else
    MODEL_DIR=$WORK
    make_model "$WORK"
fi
CKPT="$MODEL_DIR/$NAME"
GGUF="$MODEL_DIR/$NAME-f32.gguf"

# ---- the build ---------------------------------------------------------------------------------
command -v cmake >/dev/null || die "cmake not found"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    echo "== configure $BUILD (CUDA backend, Release)" >&2
    args=(-DSOTTO_CUDA=ON -DCMAKE_BUILD_TYPE=Release -DSOTTO_APPS=OFF -DSOTTO_TESTS=OFF)
    [ -n "${SOTTO_CUDA_ARCH:-}" ] && args+=("-DCMAKE_CUDA_ARCHITECTURES=$SOTTO_CUDA_ARCH")
    cmake -S "$ROOT" -B "$BUILD" "${args[@]}" >&2
fi
echo "== build sotto_bench_vocos_gpu" >&2
cmake --build "$BUILD" -j"$(nproc 2>/dev/null || echo 2)" --target sotto_bench_vocos_gpu >&2 ||
    die "build failed (the GPU bench needs the CUDA backend: SOTTO_CUDA=ON)"
BENCH="$BUILD/bench/sotto_bench_vocos_gpu"
[ -x "$BENCH" ] || die "build did not produce $BENCH"

# ---- the runs ----------------------------------------------------------------------------------
common=(--seconds "$SECONDS_AUDIO" --batch "$BATCH" --step "$STEP" --reps "$REPS"
        --stream-reps "$STREAM_REPS" --modes "$MODES" --json)
echo "== sotto_bench_vocos_gpu (${SECONDS_AUDIO} s, batch $BATCH, step $STEP, $MODES)" >&2
if ! "$BENCH" -m "$GGUF" "${common[@]}" --dump "$WORK/sdk-offline.raw" > "$WORK/sdk.json"; then
    # Whatever it finished is in its JSON (with the error); PyTorch still runs.
    echo "bench/vocos_gpu/run.sh: sotto_bench_vocos_gpu failed (above)" >&2
    SDK_FAILED=1
    [ -s "$WORK/sdk.json" ] || rm -f "$WORK/sdk.json"
fi

if [ "$TORCH" = 1 ]; then
    echo "== torch_bench.py (${SECONDS_AUDIO} s, batch $BATCH, step $STEP, $MODES)" >&2
    extra=()
    [ -n "$PYDIR" ] && extra+=(--vocos-path "$PYDIR")
    [ -f "$WORK/sdk-offline.raw" ] && extra+=(--check-sdk "$WORK/sdk-offline.raw")
    if ! PYTHONUNBUFFERED=1 "$PY" "$HERE/torch_bench.py" "$CKPT" "${common[@]}" \
        ${extra[@]+"${extra[@]}"} > "$WORK/torch.json"; then
        echo "bench/vocos_gpu/run.sh: torch_bench.py failed (above); the table leaves PyTorch out" >&2
        rm -f "$WORK/torch.json"
    fi
fi

# ---- the table ---------------------------------------------------------------------------------
"$PY" "$HERE/report.py" "$WORK" | tee "$WORK/table.txt"
if [ -n "$OUT" ]; then
    mkdir -p "$OUT"
    for f in sdk.json torch.json table.txt; do
        if [ -f "$WORK/$f" ]; then cp "$WORK/$f" "$OUT"/; fi
    done
    echo "results copied to $OUT" >&2
fi
exit "$SDK_FAILED"
