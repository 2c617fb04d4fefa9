#!/usr/bin/env bash
# Runs every test: installs the Debian build dependencies (tools/install-deps.sh), builds
# Sotto twice — a release build and an AddressSanitizer + UndefinedBehaviorSanitizer build —
# and runs the whole ctest suite on each; then, with clang, a libFuzzer build replays the
# fuzz seed corpora (label `fuzz`). GPU-labelled tests report SKIP where no GPU exists; a
# third build runs them against the CUDA emulator of tests/cudaemu (the backend's kernels,
# launches, graphs and library calls executed on the CPU: logic, not GPU results).
# Usage: bash tools/test.sh [extra ctest args]   (e.g. -L unit)
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)

bash tools/install-deps.sh

run_suite() {
    local dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >"$dir/configure.log" 2>&1 ||
        { cat "$dir/configure.log"; exit 1; }
    cmake --build "$dir" -j"$jobs"
    ctest --test-dir "$dir" --output-on-failure -j"$jobs" ${CTEST_ARGS:-}
}

mkdir -p build build-asan
echo "== release build =="
run_suite build
echo "== CUDA emulator build: the gpu tests, the backend's kernels run on the CPU (tests/cudaemu) =="
mkdir -p build-cudaemu
cmake -S . -B build-cudaemu -DCMAKE_BUILD_TYPE=Release -DSOTTO_CUDA_EMU=ON -DSOTTO_APPS=OFF \
    >build-cudaemu/configure.log 2>&1 || { cat build-cudaemu/configure.log; exit 1; }
gpu_tests=(test_cudaemu)
for f in tests/gpu/test_*.c; do gpu_tests+=("$(basename "$f" .c)"); done
cmake --build build-cudaemu -j"$jobs" --target "${gpu_tests[@]}"
ctest --test-dir build-cudaemu --output-on-failure -j"$jobs" -L gpu
echo "== sanitizer build (ASan + UBSan) =="
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    run_suite build-asan -DSOTTO_SANITIZE=ON -DSOTTO_CUDA=OFF

if command -v clang >/dev/null 2>&1; then
    echo "== fuzz build (clang, libFuzzer): replay the seed corpora =="
    mkdir -p build-fuzz
    CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DSOTTO_FUZZ=ON \
        -DSOTTO_CUDA=OFF -DSOTTO_APPS=OFF >build-fuzz/configure.log 2>&1 ||
        { cat build-fuzz/configure.log; exit 1; }
    cmake --build build-fuzz -j"$jobs"
    ctest --test-dir build-fuzz --output-on-failure -L fuzz
fi

echo "tools/test.sh: all suites passed in $(($(date +%s) - start)) s"
