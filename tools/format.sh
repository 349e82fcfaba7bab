#!/usr/bin/env bash
# The code's style: formats every tracked C++/CUDA file with clang-format and .clang-format (in place), or with
# --check lists the files that differ from it and exits 1 (tools/test.sh runs the check).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "format.sh: unknown option '$1' (usage: tools/format.sh [--check])" >&2; exit 2 ;;
esac
command -v clang-format >/dev/null 2>&1 ||
  { echo "format.sh: clang-format not found (Debian package clang-format; tools/setup.sh --tests installs it)" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.cu' '*.cuh' '*.h')
[ "${#files[@]}" -gt 0 ] || { echo "format.sh: no C++/CUDA files found (run it in a git checkout)" >&2; exit 1; }
if [ "$check" = 0 ]; then
  clang-format -i "${files[@]}"
  echo "format.sh: formatted ${#files[@]} files"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ "${#bad[@]}" -gt 0 ]; then
  echo "format.sh: ${#bad[@]} file(s) differ from .clang-format (fix with: bash tools/format.sh): ${bad[*]}" >&2
  exit 1
fi
echo "format.sh: ${#files[@]} files follow .clang-format"
