#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, fetches MNIST and Fashion-MNIST, builds (CUDA too when nvcc
# is present: CUDA tests skip, saying why, where no GPU is found), then ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash tools/setup.sh --tests  # the build's packages and PyTorch for tests/torch
# The floor plan (docs/ARCHITECTURE.md): no #include may climb this order of src/ and include/cgan/
# folders (lowest first; a comma joins folders of one layer). shared/tools/layer_check.py lists any.
layer_order="base data config backend cpu,cuda nn report eval train cli"
layer_check="$root/../shared/tools/layer_check.py"
[ -f "$layer_check" ] || { echo "test.sh: $layer_check is missing (the shared/ folder beside the checkout)" >&2; exit 1; }
python3 "$layer_check" --order "$layer_order" --root "$root"
# The code's style (.clang-format, Debian's clang-format from setup.sh): every C++/CUDA file of the tree as
# clang-format writes it; `bash tools/format.sh` rewrites them in place.
bash tools/format.sh --check
bash tools/build.sh
bash tools/fetch_data.sh mnist
bash tools/fetch_data.sh fashion  # fashion_sngan_proj's data (Debian's dataset-fashion-mnist)
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "${JOBS:-$(nproc)}" "$@"
