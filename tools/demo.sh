#!/usr/bin/env bash
# The main job on a fresh machine: installs the build dependencies, builds Sotto, and runs
# every bundled speech sample through the bundled small Vocos model (analysis–synthesis:
# the model's mel front end, then the vocoder), writing out/<clip>_vocos.wav and printing the
# real-time factor of each. Usage: bash tools/demo.sh [model.gguf]
set -euo pipefail
cd "$(dirname "$0")/.."

model=${1:-samples/models/vocos-16k-mini.gguf}
jobs=$(nproc 2>/dev/null || echo 2)

bash tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >build-configure.log 2>&1 ||
    { cat build-configure.log; exit 1; }
rm -f build-configure.log
cmake --build build -j"$jobs" --target sotto_cli >/dev/null

mkdir -p out
./build/apps/sotto info "$model" | sed -n '1,6p'
for clip in samples/speech/*.flac; do
    name=$(basename "$clip" .flac)
    ./build/apps/sotto vocode "$clip" -o "out/${name}_vocos.wav" -m "$model"
done
echo "demo: decoded audio is in out/ (compare with samples/speech/)"
