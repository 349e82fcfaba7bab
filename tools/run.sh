#!/usr/bin/env bash
# Quick start on a fresh machine: installs what is missing, fetches the data the config needs,
# builds, then trains.   tools/run.sh --config configs/mnist_mlp.json [more cgan_gpu options]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash tools/build.sh
config=""
prev=""
for a in "$@"; do
  [ "$prev" = "--config" ] && config="$a"
  prev="$a"
done
if [ -n "$config" ] && [ -f "$config" ]; then
  # data.kind decides what to fetch (MNIST-style sets need files; the synthetic sets and the
  # procedural anime faces none; an image folder is yours; "kind" defaults to mnist)
  if grep -Eq '"kind"[[:space:]]*:[[:space:]]*"fashion"' "$config"; then
    bash tools/fetch_data.sh fashion
  elif grep -Eq '"kind"[[:space:]]*:[[:space:]]*"mnist"' "$config" ||
       ! grep -Eq '"kind"[[:space:]]*:[[:space:]]*"(gaussian|mixture|anime|images)"' "$config"; then
    bash tools/fetch_data.sh mnist
  fi
fi
exec "${BUILD_DIR:-build}/cgan_gpu" "$@"
