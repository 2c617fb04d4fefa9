#!/usr/bin/env bash
# The main job on a fresh machine: installs the build dependencies, builds Sotto, and
#  1. transcodes the bundled speech samples with the bundled small FlexiCodec
#     (samples/models/flexicodec-mini.gguf) at an average 8.3 frames/s: .sotto files and the
#     decoded WAVs in out/transcode/, with the batch summary table;
#  2. compares each clip with Opus at about the same bitrate and at 6 kbps (`sotto compare`:
#     bitrate, real-time factor, log-mel distance, SI-SDR, segmental SNR, STOI) and writes a
#     spectrogram PNG per clip (original / Sotto / Opus) to out/<clip>_compare.png;
#  3. vocodes the clips through the bundled small Vocos vocoder (out/<clip>_vocos.wav).
# Usage: bash tools/demo.sh [codec.gguf [vocoder.gguf]]
set -euo pipefail
cd "$(dirname "$0")/.."

codec=${1:-samples/models/flexicodec-mini.gguf}
vocoder=${2:-samples/models/vocos-16k-mini.gguf}
rate=8.3
jobs=$(nproc 2>/dev/null || echo 2)

bash tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >build-configure.log 2>&1 ||
    { cat build-configure.log; exit 1; }
rm -f build-configure.log
cmake --build build -j"$jobs" --target sotto_cli >/dev/null
sotto=./build/apps/sotto

mkdir -p out
echo "== the codec model"
$sotto info "$codec" | sed -n '1,6p'

echo
echo "== 1. transcode samples/speech at $rate frames/s -> out/transcode/"
$sotto transcode samples/speech -o out/transcode -m "$codec" --rate "$rate" --decode

echo
echo "== 2. compare with Opus (scores against the original), spectrograms -> out/*_compare.png"
for clip in samples/speech/*.flac; do
    name=$(basename "$clip" .flac)
    $sotto compare "$clip" -m "$codec" --rate "$rate" --opus-bitrates 1300,6000 \
        --plot "out/${name}_compare.png"
    echo
done

echo "== 3. vocode through the small Vocos vocoder -> out/*_vocos.wav"
for clip in samples/speech/*.flac; do
    name=$(basename "$clip" .flac)
    $sotto vocode "$clip" -o "out/${name}_vocos.wav" -m "$vocoder"
done
echo
echo "demo: decoded audio in out/transcode/ and out/, spectrograms in out/*_compare.png"
echo "      (listen next to samples/speech/; samples/models/README.md says how good the models are)"
