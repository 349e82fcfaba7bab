#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, fetches MNIST and Fashion-MNIST, builds (CUDA too when nvcc
# is present: CUDA tests skip, saying why, where no GPU is found), then ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash tools/setup.sh --tests  # the build's packages and PyTorch for tests/torch
bash tools/build.sh
bash tools/fetch_data.sh mnist
bash tools/fetch_data.sh fashion  # fashion_sngan_proj's data (Debian's dataset-fashion-mnist)
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "${JOBS:-$(nproc)}" "$@"
