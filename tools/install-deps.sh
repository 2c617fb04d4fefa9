#!/usr/bin/env bash
# Installs the Debian packages that building and testing Sotto needs. Idempotent: packages
# already present are left alone. Must run as root (it calls apt-get); prints what to do
# otherwise. The CUDA toolkit is not installed here: the CUDA backend builds when nvcc is on
# PATH and is left out otherwise.
set -euo pipefail

PKGS=(
    build-essential cmake pkg-config clang libclang-rt-14-dev
    libcunit1-dev libsndfile1-dev libsoxr-dev libkissfft-dev libopenblas-dev
    libopus-dev libogg-dev portaudio19-dev libpng-dev jackd2
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PKGS[@]} packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run this script as root (sudo $0) or install them with apt-get" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
