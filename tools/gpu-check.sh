#!/usr/bin/env bash
# The one prepared check for a short session on a machine with an NVIDIA GPU (H100 / H200):
# machine and driver facts, a CUDA build of only what the checks need, every gpu-labelled
# test, then the GPU Vocos benchmark against PyTorch on the same GPU (bench/vocos_gpu), then,
# when at least 150 s are left and the official `flexicodec` package imports, the FlexiCodec
# decode benchmark on the GPU (bench/flexicodec_decode/run.sh --gpu 0; its small config and
# 2 s of codes unless 400 s are left). Each stage gets a share of a time budget (default
# 480 s, all stages together) and the script goes on after a failed stage, so one call always
# brings back every log there is.
#
# Nothing in this repository has run on a GPU before this script's first run.
#
# usage (on the GPU machine, from the repository root):
#   tools/gpu-check.sh [--carry DIR] [--prepared DIR] [--build DIR] [--budget SECONDS]
#                      [--no-bench] [--quick-bench]
#   --carry DIR     what --prepare made: DIR/deps.tar.xz (the build's libraries, used only when
#                   pkg-config cannot find them on the machine) and DIR/py (the Python packages
#                   vocos, encodec, gguf, for the benchmark's model and PyTorch side)
#   --prepared DIR  the benchmark's model made beforehand (bench/vocos_gpu/run.sh
#                   --prepare-only DIR); without it the model is made on the machine
#   --build DIR     build folder (default build-gpu-check in the repository; reused when there)
#   --budget S      seconds for everything (default 480)
#   --no-bench      tests only
#   --quick-bench   the benchmarks' smoke-test sizes (Vocos: 2 s of audio, batch 8;
#                   FlexiCodec: the small config, 2 s)
# and beforehand, on a Debian / Ubuntu machine with network and the tools venv:
#   tools/gpu-check.sh --prepare DIR
#     downloads the Debian packages of the build's libraries (apt-get download), unpacks them
#     into one tarball DIR/deps.tar.xz (static archives and docs left out) and copies the
#     Python packages into DIR/py; carry DIR along (about 8 MB) and pass --carry DIR.
#
# Results go to $OUT (default: a new folder under $TMPDIR), eleven files at most:
#   summary.txt  machine, GPU, driver and CUDA versions, PyTorch, each stage's result and
#                time, the test summary, the benchmark tables
#   build.log, ctest.log, bench.log   each stage's whole output
#   sdk.json, torch.json, table.txt   the benchmark's results (bench/vocos_gpu/run.sh --out)
#   flexicodec.log, flexicodec-sdk.json, flexicodec-torch.json, flexicodec-table.txt
#                the FlexiCodec decode stage's output and results (when it runs)
# environment: OUT, SOTTO_PYTHON (default python3), SOTTO_CUDA_ARCH (default 90), SOTTO_JOBS
# (build jobs, default the core count up to 16), TMPDIR.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-gpu-check
BUDGET=480
CARRY=""
PREPARED=""
BENCH=1
QUICK=0
PREPARE=""
ARCH=${SOTTO_CUDA_ARCH:-90}
PY=${SOTTO_PYTHON:-python3}

die() {
    echo "tools/gpu-check.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --carry) [ $# -ge 2 ] || die "--carry needs a folder"; CARRY=$(cd "$2" && pwd) || exit 1; shift ;;
        --prepared) [ $# -ge 2 ] || die "--prepared needs a folder"; PREPARED=$2; shift ;;
        --build) [ $# -ge 2 ] || die "--build needs a folder"; BUILD=$2; shift ;;
        --budget) [ $# -ge 2 ] || die "--budget needs seconds"; BUDGET=$2; shift ;;
        --no-bench) BENCH=0 ;;
        --quick-bench) QUICK=1 ;;
        --prepare) [ $# -ge 2 ] || die "--prepare needs a folder"; PREPARE=$2; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option: $1 (see --help)" ;;
    esac
    shift
done

# The build's libraries as Debian packages: the -dev packages pkg-config resolves (libsndfile's
# private requirements included), their runtime libraries, and pkgconf itself.
DEBS=(libsndfile1 libsndfile1-dev libflac12 libflac-dev libogg0 libogg-dev libvorbis0a
      libvorbisenc2 libvorbisfile3 libvorbis-dev libopus0 libopus-dev libmpg123-0 libmpg123-dev
      libmp3lame0 libsoxr0 libsoxr-dev libgomp1 libkissfft-float131 libkissfft-dev
      libopenblas0-pthread libopenblas-pthread-dev libgfortran5 libquadmath0 libcunit1
      libcunit1-dev pkgconf-bin libpkgconf3)
PC_MODULES=(sndfile soxr kissfft-float openblas ogg cunit)
MULTIARCH=x86_64-linux-gnu

# ---- --prepare: on a machine with network, before the GPU session ----------------------------
if [ -n "$PREPARE" ]; then
    if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
        die "--prepare needs apt-get and dpkg-deb (Debian or Ubuntu)"
    fi
    mkdir -p "$PREPARE" || exit 1
    PREPARE=$(cd "$PREPARE" && pwd)
    stage=$(mktemp -d "${TMPDIR:-/tmp}/sotto-gpu-deps.XXXXXX")
    (cd "$stage" && apt-get download "${DEBS[@]}") || die "apt-get download failed"
    mkdir -p "$stage/root"
    for f in "$stage"/*.deb; do
        dpkg-deb -x "$f" "$stage/root" || die "cannot unpack $f"
    done
    # Debian points pkgconfig/openblas.pc and libopenblas.so at the pthread variant through
    # update-alternatives, which unpacking does not run: the same links, relative.
    ob="$stage/root/usr/lib/$MULTIARCH"
    ln -sf ../openblas-pthread/pkgconfig/openblas.pc "$ob/pkgconfig/openblas.pc"
    ln -sf openblas-pthread/libopenblas.so.0 "$ob/libopenblas.so.0"
    ln -sf openblas-pthread/libopenblas.so "$ob/libopenblas.so"
    find "$stage/root" -name '*.a' -delete
    rm -f "$ob"/openblas-pthread/liblapack.so* "$ob"/openblas-pthread/libblas.so*
    rm -rf "$stage/root/usr/share/doc" "$stage/root/usr/share/man" "$stage/root/usr/share/lintian"
    tar -C "$stage/root" -cJf "$PREPARE/deps.tar.xz" . || die "cannot write deps.tar.xz"
    rm -rf "$stage"
    "$ROOT/bench/vocos_gpu/run.sh" --pack-python "$PREPARE/py" || die "cannot pack the Python packages"
    echo "prepared $PREPARE ($(du -sh "$PREPARE" | cut -f1)); on the GPU machine: tools/gpu-check.sh --carry DIR" >&2
    exit 0
fi

# ---- on the GPU machine ------------------------------------------------------------------------
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/sotto-gpu-check.XXXXXX")}
mkdir -p "$OUT" || exit 1
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
START=$(date +%s)
say() { echo "$*" | tee -a "$SUMMARY"; }
left() { echo $((START + BUDGET - $(date +%s))); }
# Seconds for a stage: at most $1, leaving $2 for the stages after it (at least 30).
share() {
    local s=$(( $(left) - $2 ))
    [ "$s" -gt "$1" ] && s=$1
    [ "$s" -lt 30 ] && s=30
    echo "$s"
}
# Runs "$@" under a time limit, output to log $1 (shifted); records the result.
stage() {
    local name=$1 limit=$2 log=$3
    shift 3
    local t0 rc
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >> "$log" 2>&1
    rc=$?
    local what="ok"
    [ $rc -eq 124 ] || [ $rc -eq 137 ] && what="TIMED OUT after ${limit} s"
    [ $rc -ne 0 ] && [ "$what" = ok ] && what="FAILED (exit $rc)"
    say "stage $name: $what, $(( $(date +%s) - t0 )) s (log: $(basename "$log"))"
    return $rc
}

say "== tools/gpu-check.sh, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), budget ${BUDGET} s"
say "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') ($(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) paths differ from it)"
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH=/usr/local/cuda/bin:$PATH
fi
{
    echo "== machine"
    uname -srm
    grep -m1 'model name' /proc/cpuinfo 2>/dev/null
    echo "cores: $(nproc 2>/dev/null)"
    free -g 2>/dev/null | head -2
    echo "== GPU"
    nvidia-smi 2>&1 || echo "nvidia-smi failed"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit,compute_cap --format=csv 2>&1
    echo "== toolchain"
    nvcc --version 2>&1 | tail -2 || echo "nvcc not found"
    cmake --version 2>&1 | head -1
    cc --version 2>&1 | head -1
    "$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version(), "device:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")' 2>&1 | tail -1
} 2>&1 | tee -a "$SUMMARY"

# ---- the libraries the build needs ---------------------------------------------------------------
need_deps=0
if ! command -v pkg-config >/dev/null && ! command -v pkgconf >/dev/null; then
    need_deps=1
else
    PKGC=$(command -v pkg-config || command -v pkgconf)
    "$PKGC" --exists "${PC_MODULES[@]}" 2>/dev/null || need_deps=1
fi
CMAKE_EXTRA=()
if [ $need_deps = 1 ]; then
    if [ -n "$CARRY" ] && [ -f "$CARRY/deps.tar.xz" ]; then
        # beside the build, so that a second run configures against the same paths
        DEPS=$BUILD/carried-deps
        rm -rf "$DEPS"
        mkdir -p "$DEPS" || die "cannot make $DEPS"
        # tar needs the xz program for this; Python's tarfile does not
        tar -C "$DEPS" -xJf "$CARRY/deps.tar.xz" 2>/dev/null ||
            "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
                "$CARRY/deps.tar.xz" "$DEPS" || die "cannot unpack $CARRY/deps.tar.xz"
        # Only the carried .pc files, their paths under DEPS; the runtime finds the carried
        # libraries (and the libraries they need) through LD_LIBRARY_PATH.
        export PKG_CONFIG_LIBDIR="$DEPS/usr/lib/$MULTIARCH/pkgconfig:$DEPS/usr/share/pkgconfig"
        export PKG_CONFIG_SYSROOT_DIR="$DEPS"
        export LD_LIBRARY_PATH="$DEPS/usr/lib/$MULTIARCH:$DEPS/usr/lib/$MULTIARCH/openblas-pthread:$DEPS/lib/$MULTIARCH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        if ! command -v pkg-config >/dev/null; then
            CMAKE_EXTRA+=("-DPKG_CONFIG_EXECUTABLE=$DEPS/usr/bin/pkgconf")
        fi
        say "libraries: not all on this machine (${PC_MODULES[*]}); using the carried ones"
    else
        say "libraries: pkg-config does not find all of ${PC_MODULES[*]} and no --carry DIR with deps.tar.xz was given: the configure will fail (see tools/gpu-check.sh --help, --prepare)"
    fi
else
    say "libraries: found on this machine"
fi

# ---- configure and build -------------------------------------------------------------------------
GEN=()
command -v ninja >/dev/null && [ ! -f "$BUILD/CMakeCache.txt" ] && GEN=(-G Ninja)
TESTS=()
for f in "$ROOT"/tests/gpu/test_*.c; do
    TESTS+=("$(basename "$f" .c)")
done
JOBS=${SOTTO_JOBS:-$(nproc 2>/dev/null || echo 8)}
[ "$JOBS" -gt 16 ] && JOBS=16
build_ok=1
stage configure "$(share 120 300)" "$OUT/build.log" \
    cmake -S "$ROOT" -B "$BUILD" ${GEN[@]+"${GEN[@]}"} -DCMAKE_BUILD_TYPE=Release -DSOTTO_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DSOTTO_APPS=OFF ${CMAKE_EXTRA[@]+"${CMAKE_EXTRA[@]}"} || build_ok=0
if [ $build_ok = 1 ]; then
    stage "build (tests)" "$(share 300 200)" "$OUT/build.log" \
        cmake --build "$BUILD" -j"$JOBS" --target "${TESTS[@]}" || build_ok=0
fi

# ---- the gpu-labelled tests ----------------------------------------------------------------------
if [ $build_ok = 1 ]; then
    stage "ctest -L gpu" "$(share 240 120)" "$OUT/ctest.log" \
        ctest --test-dir "$BUILD" -L gpu --output-on-failure -V --timeout 180
    grep -E "tests passed|tests failed|Skipped|\*\*\*|Passed|Failed|Not Run" "$OUT/ctest.log" |
        tail -20 | tee -a "$SUMMARY"
    # What the tests recorded (-V keeps the output of passing tests too): the achieved error
    # of every comparison.
    grep -E " max_abs=| FAIL" "$OUT/ctest.log" | sed 's/^.*tests\/gpu\///' | tail -60 >> "$SUMMARY"
else
    say "stage ctest -L gpu: skipped (no build)"
fi

# ---- the benchmark ---------------------------------------------------------------------------
if [ $BENCH = 1 ] && [ $build_ok = 1 ]; then
    args=(--build "$BUILD" --out "$OUT")
    [ -n "$CARRY" ] && [ -d "$CARRY/py" ] && args+=(--py "$CARRY/py")
    [ -n "$PREPARED" ] && args+=(--prepared "$PREPARED")
    [ $QUICK = 1 ] && args+=(--quick)
    export SOTTO_PYTHON=$PY
    stage "bench/vocos_gpu" "$(share 600 10)" "$OUT/bench.log" \
        "$ROOT/bench/vocos_gpu/run.sh" "${args[@]}"
    say ""
    if [ -f "$OUT/table.txt" ]; then
        tee -a "$SUMMARY" < "$OUT/table.txt"
    fi
    if [ ! -f "$OUT/table.txt" ] || [ ! -f "$OUT/sdk.json" ]; then
        tail -30 "$OUT/bench.log" | tee -a "$SUMMARY"
    fi
elif [ $BENCH = 1 ]; then
    say "stage bench/vocos_gpu: skipped (no build)"
fi

# ---- FlexiCodec decode on the GPU (optional) -----------------------------------------------------
# Only with time to spare and the Python packages bench/flexicodec_decode/run.sh needs (the
# official flexicodec package among them, rarely on a GPU machine without network).
if [ $BENCH = 1 ] && [ $build_ok = 1 ]; then
    fx_left=$(left)
    fx_path=${PYTHONPATH:-}
    if [ -n "$CARRY" ] && [ -d "$CARRY/py" ]; then
        fx_path="$CARRY/py${fx_path:+:$fx_path}"
    fi
    if [ "$fx_left" -lt 150 ]; then
        say "stage bench/flexicodec_decode: skipped (${fx_left} s of the budget left; it needs 150)"
    elif ! fx_missing=$(PYTHONPATH=$fx_path timeout 120 "$PY" -c '
import importlib, sys
missing = []
for m in ("torch", "flexicodec.modeling_flexicodec", "gguf", "yaml", "numpy", "safetensors"):
    try:
        importlib.import_module(m)
    except Exception:
        missing.append(m.split(".")[0])
print(" ".join(missing))
' 2>/dev/null | tail -1); then
        say "stage bench/flexicodec_decode: skipped ($PY could not check its Python packages)"
    elif [ -n "$fx_missing" ]; then
        say "stage bench/flexicodec_decode: skipped ($PY cannot import: $fx_missing)"
    else
        fx_out=$(mktemp -d "${TMPDIR:-/tmp}/sotto-gpu-check-flexicodec.XXXXXX")
        fx_args=(--gpu 0 --out "$fx_out")
        if [ $QUICK = 1 ] || [ "$fx_left" -lt 400 ]; then
            fx_args+=(--quick)
        fi
        stage "bench/flexicodec_decode" "$(share 600 10)" "$OUT/flexicodec.log" \
            env SOTTO_PYTHON="$PY" SOTTO_BENCH_BUILD="$BUILD" PYTHONPATH="$fx_path" \
            "$ROOT/bench/flexicodec_decode/run.sh" "${fx_args[@]}"
        for f in sdk-f32.json:flexicodec-sdk.json torch.json:flexicodec-torch.json \
            table.txt:flexicodec-table.txt; do
            if [ -f "$fx_out/${f%%:*}" ]; then cp "$fx_out/${f%%:*}" "$OUT/${f#*:}"; fi
        done
        rm -rf "$fx_out"
        say ""
        if [ -f "$OUT/flexicodec-table.txt" ]; then
            tee -a "$SUMMARY" < "$OUT/flexicodec-table.txt"
        else
            tail -30 "$OUT/flexicodec.log" | tee -a "$SUMMARY"
        fi
    fi
fi

say ""
say "== done in $(( $(date +%s) - START )) s; results in $OUT"
