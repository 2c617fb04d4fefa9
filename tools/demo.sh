#!/usr/bin/env bash
# The main job on a fresh machine: installs the build dependencies, builds Sotto, and
#  1. transcodes the bundled speech samples with the bundled small FlexiCodec
#     (samples/models/flexicodec-mini.gguf) at an average 8.3 frames/s: .sotto files and the
#     decoded WAVs in out/transcode/, with the batch summary table;
#  2. compares the clips with Opus at Sotto's own bitrate and at 6, 12 and 24 kbit/s (`sotto
#     compare`: bitrate, real-time factor, log-mel distance, SI-SDR, segmental SNR, STOI; a
#     table per clip and an overall one) and writes a spectrogram PNG per clip (original /
#     Sotto / each Opus rate) to out/<clip>_compare.png;
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
echo "== 2. compare with Opus (at Sotto's bitrate and at 6/12/24 kbit/s; scores against the"
echo "      original): a table per clip and overall; spectrograms -> out/*_compare.png"
$sotto compare samples/speech/*.flac -m "$codec" --rate "$rate"
echo
for clip in samples/speech/*.flac; do
    name=$(basename "$clip" .flac)
    $sotto compare "$clip" -m "$codec" --rate "$rate" --plot "out/${name}_compare.png" >/dev/null
done

echo "== 3. vocode through the small Vocos vocoder -> out/*_vocos.wav"
for clip in samples/speech/*.flac; do
    name=$(basename "$clip" .flac)
    $sotto vocode "$clip" -o "out/${name}_vocos.wav" -m "$vocoder"
done
echo
echo "demo: decoded audio in out/transcode/ and out/, spectrograms in out/*_compare.png"
echo "      (listen next to samples/speech/; samples/models/README.md says how good the models are)"
