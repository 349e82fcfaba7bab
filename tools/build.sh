#!/usr/bin/env bash
# Configures and builds cgan_gpu into build/ (Release). Installs missing Debian packages first.
# The CUDA backend is built whenever nvcc is found (CUDA_ARCHS, default "80;90", picks the GPUs).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash tools/setup.sh
build_dir="${BUILD_DIR:-build}"
jobs="${JOBS:-$(nproc)}"
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S . -B "$build_dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    ${CUDA_ARCHS:+-DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS"} ${CMAKE_ARGS:-}
fi
cmake --build "$build_dir" -j "$jobs"
