#!/usr/bin/env bash
# The whole GPU check in one command (docs/PROFILING.md): build, every CUDA test, compute-sanitizer
# (memcheck, racecheck, synccheck, initcheck) on short mnist_mlp and anime_small runs with and without
# CUDA graphs, `cgan_gpu bench --per-op`, and tools/bench_vs_pytorch.sh against the PyTorch peer;
# writes OUT_DIR/report.md and OUT_DIR/report.json (plus OUT_DIR/logs/). Meant for the GPU machine
# (no network, no apt, no OpenBLAS or stb there), within 8 minutes, build included.
#
#   tools/gpu_check.sh --prepare DIR    on a machine with the Debian mirror: puts what the GPU
#                                       machine's build lacks into DIR (Debian packages, MNIST .gz,
#                                       a copy of the PyTorch peer)
#   tools/gpu_check.sh --prebuild DIR   also here, with nvcc: builds cgan_gpu and the CUDA tests for
#                                       the GPU machine (sm_90, no MPI/oneDNN/NCCL, which it lacks)
#                                       and packs them into DIR/prebuilt (~12 MB), so that the check
#                                       there skips its build (minutes of device time); it is used
#                                       only when the tree there is the one it was built from
#   tools/gpu_check.sh --tree-hash      prints the tree's hash as --prebuild records it
#   tools/gpu_check.sh [options] OUT_DIR
#       --deps DIR      the prepared DIR (default: .gpu_deps in the repository, when present)
#       --build-dir D   build folder (default $BUILD_DIR or build-gpu-check); an existing one is
#                       built incrementally, not configured again
#       --no-build      use the build folder as it is (its cgan_gpu must exist)
#       --no-prebuilt   build there even when DIR/prebuilt fits the tree
#       --no-gpu        build and report only, as on a machine without a GPU
#       --budget S      seconds the whole check may take (default 480; the build may take 3/4 of
#                       it); parts that no longer fit are reported as skipped
#   Environment: JOBS (default: all cores), CUDA_ARCHS (default 90), CMAKE_ARGS (more configure
#   arguments), CUDNN_ROOT (default: PyTorch's copy, python3 -c "import nvidia.cudnn ...").
#
# Exit status: 0 when the check ran (whatever the parts found: the report says which part failed
# and why; also 0 on a machine without a GPU, after the build), 1 when the build failed, 2 on a bad
# command line, 1 when --prepare fails.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
t_start=$(date +%s)

die_usage() { echo "gpu_check.sh: $*" >&2; exit 2; }

# ------------------------------------------------------------------------------- prepared packages
# Debian packages the build needs that the GPU machine lacks. Bookworm's builds need glibc <= 2.36,
# so they run on Ubuntu 24.04 (glibc 2.39). OpenBLAS links libgfortran5 (and libquadmath0);
# zlib1g-dev's libz.so points into zlib1g.
deb_packages=(libopenblas0-pthread libopenblas-pthread-dev libgfortran5 libquadmath0 libstb0 libstb-dev
              zlib1g zlib1g-dev)

# Unpacks DIR/debs/*.deb into PREFIX (dpkg-deb -x, or ar + tar where dpkg-deb is missing) and drops
# what the build does not use (static OpenBLAS, LAPACK, docs).
unpack_debs() {
  local debs="$1" prefix="$2" d
  rm -rf "$prefix"
  mkdir -p "$prefix"
  for d in "$debs"/*.deb; do
    if command -v dpkg-deb >/dev/null 2>&1; then
      dpkg-deb -x "$d" "$prefix" || return 1
    else
      local member
      member=$(ar t "$d" | grep '^data\.tar') || return 1
      ar p "$d" "$member" | tar -x -a -f - -C "$prefix" 2>/dev/null ||
        ar p "$d" "$member" | tar -xJ -C "$prefix" || return 1
    fi
  done
  rm -rf "$prefix/usr/share/doc" "$prefix/usr/share/lintian"
  find "$prefix" \( -name 'libopenblas*.a' -o -name 'liblapack*' -o -name 'libblas.a' \) -delete
  # absolute links (zlib1g-dev's libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13) point into the prefix
  local link target
  while IFS= read -r link; do
    target=$(readlink "$link")
    case "$target" in
      /*) [ -e "$prefix$target" ] && ln -sfn "$prefix$target" "$link" ;;
    esac
  done < <(find "$prefix" -type l)
  return 0
}

prepare() {
  local dir="$1"
  command -v apt-get >/dev/null 2>&1 || { echo "gpu_check.sh --prepare: needs apt-get (a Debian/Ubuntu machine with its mirror)" >&2; return 1; }
  mkdir -p "$dir/debs" || return 1
  dir="$(cd "$dir" && pwd)"
  rm -f "$dir"/debs/*.deb
  echo "gpu_check.sh --prepare: downloading ${deb_packages[*]}"
  if ! (cd "$dir/debs" && apt-get download -q "${deb_packages[@]}" >"$dir/debs/download.log" 2>&1); then
    echo "gpu_check.sh --prepare: apt-get download failed; running apt-get update and trying again"
    if ! { apt-get update -q >/dev/null && (cd "$dir/debs" && apt-get download -q "${deb_packages[@]}" >"$dir/debs/download.log" 2>&1); }; then
      echo "gpu_check.sh --prepare: apt-get download failed: $(tail -n 2 "$dir/debs/download.log")" >&2
      return 1
    fi
  fi
  rm -f "$dir/debs/download.log"
  # check what was fetched: the files the build needs, and the glibc the libraries ask for
  local tmp
  tmp=$(mktemp -d)
  unpack_debs "$dir/debs" "$tmp/prefix" || { rm -rf "$tmp"; echo "gpu_check.sh --prepare: unpacking failed" >&2; return 1; }
  local f missing=0
  for f in usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so \
           usr/lib/x86_64-linux-gnu/libgfortran.so.5 usr/include/stb/stb_image.h usr/include/stb/stb_image_write.h \
           usr/lib/x86_64-linux-gnu/libstb.a usr/include/zlib.h usr/lib/x86_64-linux-gnu/libz.so; do
    [ -e "$tmp/prefix/$f" ] || { echo "gpu_check.sh --prepare: $f missing from the packages" >&2; missing=1; }
  done
  local glibc="?"
  if command -v objdump >/dev/null 2>&1; then
    glibc=$(find "$tmp/prefix" -name '*.so*' -type f -exec objdump -T {} + 2>/dev/null |
            grep -o 'GLIBC_[0-9.]*' | sort -t. -k2,2n -k3,3n -u | tail -n 1)
  fi
  local prefix_mb
  prefix_mb=$(du -sm "$tmp/prefix" | cut -f1)
  rm -rf "$tmp"
  [ "$missing" = 0 ] || return 1
  # MNIST (the data/ folder is not in git): gzip-compressed IDX files, read as they are
  if ls data/mnist/*-ubyte >/dev/null 2>&1 || ls data/mnist/*-ubyte.gz >/dev/null 2>&1; then
    mkdir -p "$dir/data/mnist"
    for f in data/mnist/*-ubyte data/mnist/*-ubyte.gz; do
      [ -e "$f" ] || continue
      case "$f" in
        *.gz) cp "$f" "$dir/data/mnist/" ;;
        *) gzip -9 -c "$f" >"$dir/data/mnist/$(basename "$f").gz" ;;
      esac
    done
  else
    echo "gpu_check.sh --prepare: no data/mnist here (tools/fetch_data.sh mnist): the mnist_mlp parts will be skipped there"
  fi
  # the PyTorch peer, in case the GPU machine's copy of the tree has no ../shared
  local peer="${PEER:-$root/../shared/bench/pytorch_reference.py}"
  if [ -f "$peer" ]; then
    cp "$peer" "$dir/pytorch_reference.py"
  else
    echo "gpu_check.sh --prepare: the PyTorch peer is not at $peer (set PEER): not copied"
  fi
  {
    echo "prepared by tools/gpu_check.sh --prepare on $(hostname) at $(date -u +%FT%TZ)"
    echo "unpacked prefix: ${prefix_mb} MB; newest glibc symbol required: ${glibc}"
    (cd "$dir" && find . -type f ! -name MANIFEST.txt -printf '%s %p\n' | sort -k2 |
       while read -r size p; do echo "$(sha256sum "$p" | cut -c1-16) $size $p"; done)
  } >"$dir/MANIFEST.txt"
  echo "gpu_check.sh --prepare: $dir holds $(du -sh "$dir" | cut -f1) (the unpacked prefix: ${prefix_mb} MB, made by the check; newest glibc symbol: ${glibc})"
  return 0
}

# A hash of the tree's sources as git sees them: HEAD, the uncommitted changes, the untracked files
# that are not ignored. The prebuilt binaries are used only where it matches.
tree_hash() {
  { git -C "$root" rev-parse HEAD; git -C "$root" diff HEAD --binary
    git -C "$root" ls-files -o --exclude-standard -z | (cd "$root" && xargs -0 -r sha256sum); } 2>/dev/null |
    sha256sum | cut -c1-16
}

prebuild() {
  local dir="$1" bdir="${BUILD_DIR:-build-gpu-pack}"
  command -v nvcc >/dev/null 2>&1 || { echo "gpu_check.sh --prebuild: needs nvcc (the CUDA toolkit)" >&2; return 1; }
  mkdir -p "$dir" || return 1
  dir="$(cd "$dir" && pwd)"
  case "$bdir" in /*) ;; *) bdir="$root/$bdir" ;; esac
  local gen=()
  command -v ninja >/dev/null 2>&1 && [ ! -f "$bdir/CMakeCache.txt" ] && gen=(-G Ninja)
  echo "gpu_check.sh --prebuild: building cgan_gpu and cgan_cuda_tests in $bdir"
  cmake -S "$root" -B "$bdir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHS:-90}" \
    -DCGAN_WITH_MPI=OFF -DCGAN_WITH_DNNL=OFF -DCGAN_WITH_NCCL=OFF ${CMAKE_ARGS:-} >"$dir/prebuild.log" 2>&1 &&
    cmake --build "$bdir" -j "${JOBS:-$(nproc)}" --target cgan_gpu cgan_cuda_tests >>"$dir/prebuild.log" 2>&1 ||
    { echo "gpu_check.sh --prebuild: the build failed: $(tail -n 3 "$dir/prebuild.log")" >&2; return 1; }
  grep -q '^CUDNN_LIBRARY:.*NOTFOUND' "$bdir/CMakeCache.txt" &&
    { echo "gpu_check.sh --prebuild: cuDNN was not found here (CUDNN_ROOT): the conv tests would not run" >&2; return 1; }
  local p="$dir/prebuilt"
  rm -rf "$p" && mkdir -p "$p/tests" || return 1
  cp "$bdir/cgan_gpu" "$bdir/CTestTestfile.cmake" "$p/" &&
    cp "$bdir/tests/cgan_cuda_tests" "$bdir/tests/CTestTestfile.cmake" "$bdir"/tests/*_include.cmake \
       "$bdir/tests/cgan_cuda_tests[1]_tests.cmake" "$p/tests/" || return 1
  strip "$p/cgan_gpu" "$p/tests/cgan_cuda_tests" 2>/dev/null
  {
    echo "build_dir=$bdir"
    echo "source_dir=$root"
    echo "tree=$(tree_hash)"
    echo "made=$(hostname) $(date -u +%FT%TZ) $(git -C "$root" rev-parse --short HEAD)"
  } >"$p/PATHS"
  echo "gpu_check.sh --prebuild: $p holds $(du -sh "$p" | cut -f1) (tree $(tree_hash)); carry $dir to the GPU machine"
  return 0
}

# ---------------------------------------------------------------------------------- command line
out_dir="" deps="" build_dir="${BUILD_DIR:-build-gpu-check}" no_build=0 no_gpu=0 budget=480 no_prebuilt=0
[ $# -gt 0 ] || die_usage "usage: tools/gpu_check.sh [--deps DIR] [--build-dir D] [--no-build] [--no-prebuilt] [--no-gpu] [--budget S] OUT_DIR | --prepare DIR | --prebuild DIR"
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    --prepare)
      [ $# -eq 2 ] || die_usage "--prepare takes exactly one argument, the folder to fill"
      prepare "$2"; exit $? ;;
    --deps) [ $# -ge 2 ] || die_usage "--deps: missing value"; deps="$2"; shift 2 ;;
    --build-dir) [ $# -ge 2 ] || die_usage "--build-dir: missing value"; build_dir="$2"; shift 2 ;;
    --prebuild)
      [ $# -eq 2 ] || die_usage "--prebuild takes exactly one argument, the folder to fill"
      prebuild "$2"; exit $? ;;
    --tree-hash) [ $# -eq 1 ] || die_usage "--tree-hash takes no other argument"; tree_hash; exit 0 ;;
    --no-build) no_build=1; shift ;;
    --no-prebuilt) no_prebuilt=1; shift ;;
    --no-gpu) no_gpu=1; shift ;;
    --budget)
      [ $# -ge 2 ] || die_usage "--budget: missing value"
      [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 60 ] || die_usage "--budget: expected seconds >= 60, got '$2'"
      budget="$2"; shift 2 ;;
    -*) die_usage "unknown option '$1' (see --help)" ;;
    *) [ -z "$out_dir" ] || die_usage "one OUT_DIR only (got '$out_dir' and '$1')"; out_dir="$1"; shift ;;
  esac
done
[ -n "$out_dir" ] || die_usage "OUT_DIR missing"
[ -z "$deps" ] && [ -d "$root/.gpu_deps" ] && deps="$root/.gpu_deps"
if [ -n "$deps" ]; then
  [ -d "$deps" ] || die_usage "--deps: '$deps' is not a folder (make it with --prepare)"
  deps="$(cd "$deps" && pwd)"
fi
tree_now=""
[ -n "$deps" ] && [ -f "$deps/prebuilt/PATHS" ] && tree_now=$(tree_hash)  # before anything is written
mkdir -p "$out_dir/logs" || die_usage "cannot create $out_dir"
out_dir="$(cd "$out_dir" && pwd)"
logs="$out_dir/logs"
steps_tsv="$out_dir/steps.tsv"
: >"$steps_tsv"
jobs="${JOBS:-$(nproc)}"

say() { echo "gpu_check: $*"; }
elapsed() { echo $(( $(date +%s) - t_start )); }
# record NAME STATUS SECONDS RC LOG NOTE
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$(printf '%s' "$6" | tr '\t\n' '  ')" >>"$steps_tsv"; }

# run_step NAME TIMEOUT CMD... : runs CMD with its output in logs/NAME.log, under TIMEOUT seconds cut
# to what is left of the budget (15 s are kept for the report); records pass/fail/timeout/skipped.
run_step() {
  local name="$1" limit="$2"; shift 2
  local left=$(( budget - 15 - $(elapsed) ))
  local log="$logs/$name.log"
  if [ "$left" -lt 10 ]; then
    record "$name" skipped 0 - "" "not started: the ${budget}-second budget is spent"
    say "$name: skipped (budget spent)"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0 rc status note=""
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
  rc=$?
  case "$rc" in
    0) status=pass ;;
    124|137) status=timeout; note="killed after ${limit} s" ;;
    *) status=fail; note="exit $rc: $(grep -v '^\s*$' "$log" | tail -n 3 | cut -c1-300 | tr '\n' ' ')" ;;
  esac
  record "$name" "$status" $(( $(date +%s) - t0 )) "$rc" "logs/$name.log" "$note"
  say "$name: $status ($(( $(date +%s) - t0 )) s)"
  return 0
}

# ------------------------------------------------------------------------------------ environment
{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(hostname)  cores: $(nproc)"
  grep PRETTY_NAME /etc/os-release 2>/dev/null
  echo "git: $(git -C "$root" rev-parse --short HEAD 2>/dev/null) $(git -C "$root" status --porcelain 2>/dev/null | wc -l) changed files"
} >"$logs/environment.log"

# the Python environment's tools (cmake, ninja) and the CUDA toolkit, when they are not on PATH
if ! command -v cmake >/dev/null 2>&1; then
  py_bin=$(python3 -c 'import os, sys; print(os.path.dirname(sys.executable))' 2>/dev/null || true)
  [ -n "$py_bin" ] && [ -x "$py_bin/cmake" ] && export PATH="$PATH:$py_bin"
fi
for d in /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer; do
  [ -d "$d" ] && export PATH="$PATH:$d"
done

gpu=0 gpu_note=""
if [ "$no_gpu" = 1 ]; then
  gpu_note="--no-gpu given: GPU parts not run"
elif ! command -v nvidia-smi >/dev/null 2>&1; then
  gpu_note="no GPU: nvidia-smi not found"
elif ! nvidia-smi -L >"$logs/nvidia-smi.log" 2>&1 || ! grep -q '^GPU ' "$logs/nvidia-smi.log"; then
  gpu_note="no GPU: nvidia-smi -L lists none ($(head -n 1 "$logs/nvidia-smi.log"))"
else
  gpu=1
  gpu_note=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n 1)
fi
echo "gpu: $gpu_note" >>"$logs/environment.log"
command -v nvcc >/dev/null 2>&1 && nvcc --version | tail -n 2 >>"$logs/environment.log"

# ---------------------------------------------------------------- a build packed by --prebuild
# Used instead of building when it was made from this very tree and loads here: its ctest files
# name the folders it was built in, so those paths are linked to the tree and to DIR/prebuilt.
prebuilt_note=""
if [ "$no_prebuilt" = 0 ] && [ "$no_build" = 0 ] && [ -n "$deps" ] && [ -f "$deps/prebuilt/PATHS" ]; then
  pb="$deps/prebuilt"
  pb_build=$(sed -n 's/^build_dir=//p' "$pb/PATHS"); pb_src=$(sed -n 's/^source_dir=//p' "$pb/PATHS")
  pb_tree=$(sed -n 's/^tree=//p' "$pb/PATHS"); pb_made=$(sed -n 's/^made=//p' "$pb/PATHS")
  why=""
  if [ "$pb_tree" != "$tree_now" ]; then
    why="it was built from another tree ($pb_tree; this one is $tree_now)"
  elif [ "$pb_src" != "$root" ] && [ -e "$pb_src" ]; then
    why="the folder it was built from, $pb_src, is another folder here"
  elif [ -e "$pb_build" ] && [ ! -L "$pb_build" ]; then
    why="its build folder $pb_build is a real folder here"
  fi
  if [ -z "$why" ]; then
    if ls "$deps"/debs/*.deb >/dev/null 2>&1 && unpack_debs "$deps/debs" "$pb/_prefix"; then
      export LD_LIBRARY_PATH="$pb/_prefix/usr/lib/x86_64-linux-gnu/openblas-pthread:$pb/_prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
    if ldd "$pb/cgan_gpu" 2>/dev/null | grep -q 'libcudnn.* not found'; then
      c=$(python3 -c 'import nvidia.cudnn as c; print(c.__path__[0])' 2>/dev/null || true)
      [ -n "$c" ] && [ -d "$c/lib" ] && export LD_LIBRARY_PATH="$c/lib:$LD_LIBRARY_PATH"
    fi
    missing=$(ldd "$pb/cgan_gpu" "$pb/tests/cgan_cuda_tests" 2>&1 | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
    [ -n "$missing" ] && why="it does not load here (not found: $missing)"
  fi
  if [ -z "$why" ] && [ "$pb_src" != "$root" ]; then
    { mkdir -p "$(dirname "$pb_src")" && ln -sfn "$root" "$pb_src"; } || why="cannot link $pb_src to the tree"
  fi
  if [ -z "$why" ]; then
    { mkdir -p "$(dirname "$pb_build")" && ln -sfn "$pb" "$pb_build"; } || why="cannot link $pb_build to $pb"
  fi
  if [ -z "$why" ]; then
    build_dir="$pb_build" no_build=1
    prebuilt_note="prebuilt by --prebuild ($pb_made), tree $pb_tree: $pb"
  else
    prebuilt_note="$pb not used: $why; building here"
  fi
fi

# prepared packages -> a prefix inside the build folder, unpacked when the folder is configured
# (a build made from it keeps using it); cuDNN from the Python environment
cmake_args=(-DCMAKE_BUILD_TYPE=Release "-DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHS:-90}" ${CMAKE_ARGS:-})
configure=0
[ "$no_build" = 0 ] && [ ! -f "$build_dir/CMakeCache.txt" ] && configure=1
prefix="$build_dir/_prefix"
[ "${build_dir#/}" = "$build_dir" ] && prefix="$root/$build_dir/_prefix"
ob="$prefix/usr/lib/x86_64-linux-gnu/openblas-pthread"
if [ "$configure" = 1 ] && [ -n "$deps" ] && ls "$deps"/debs/*.deb >/dev/null 2>&1; then
  if unpack_debs "$deps/debs" "$prefix"; then
    cmake_args+=("-DCMAKE_PREFIX_PATH=$prefix/usr" "-DCMAKE_LIBRARY_PATH=$ob")
    record deps pass 0 0 "" "unpacked $(ls "$deps"/debs/*.deb | wc -l) packages from $deps into $prefix"
  else
    rm -rf "$prefix"
    record deps fail 0 1 "" "could not unpack $deps/debs: building with the system's libraries"
  fi
elif [ "$configure" = 1 ]; then
  record deps skipped 0 - "" "no prepared packages (tools/gpu_check.sh --prepare DIR, then --deps DIR): the system's OpenBLAS/stb are used"
fi
[ -d "$ob" ] && export LD_LIBRARY_PATH="$ob:$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -z "${CUDNN_ROOT:-}" ] && { [ "$configure" = 1 ] || [ "$gpu" = 1 ]; }; then
  CUDNN_ROOT=$(python3 -c 'import nvidia.cudnn as c; print(c.__path__[0])' 2>/dev/null || true)
fi
if [ -n "${CUDNN_ROOT:-}" ] && [ -d "$CUDNN_ROOT/lib" ]; then
  export CUDNN_ROOT
  cmake_args+=("-DCUDNN_ROOT=$CUDNN_ROOT")
  export LD_LIBRARY_PATH="$CUDNN_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "cudnn: $CUDNN_ROOT" >>"$logs/environment.log"
fi
# MNIST from the prepared folder when the tree has none (data/ is not in git)
if [ ! -e data/mnist ] && [ -n "$deps" ] && [ -d "$deps/data/mnist" ]; then
  mkdir -p data && ln -s "$deps/data/mnist" data/mnist
fi
have_mnist=0
ls data/mnist/train-images-idx3-ubyte* >/dev/null 2>&1 && have_mnist=1
# the PyTorch peer for bench_vs_pytorch.sh: $PEER, ../shared/bench/, shared/bench/ or the prepared copy
for p in "${PEER:-}" "$root/../shared/bench/pytorch_reference.py" "$root/shared/bench/pytorch_reference.py" \
         "${deps:+$deps/pytorch_reference.py}"; do
  [ -n "$p" ] && [ -f "$p" ] && { export PEER="$p"; break; }
done
echo "peer: ${PEER:-not found}" >>"$logs/environment.log"

# ------------------------------------------------------------------------------------------ build
bin="$build_dir/cgan_gpu"
case "$prebuilt_note" in *"not used"*) record prebuilt skipped 0 - "" "$prebuilt_note" ;; esac
if [ "$no_build" = 1 ] && [ -n "$prebuilt_note" ]; then
  record build skipped 0 - "" "$prebuilt_note"
elif [ "$no_build" = 1 ]; then
  record build skipped 0 - "" "--no-build: using $bin as it is"
else
  if [ "$configure" = 1 ]; then
    gen=()
    command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
    run_step configure 120 cmake -S . -B "$build_dir" "${gen[@]}" "${cmake_args[@]}"
  fi
  run_step build $(( budget * 3 / 4 )) cmake --build "$build_dir" -j "$jobs"
fi
[ -x "$bin" ] || record binary fail 0 1 "" "$bin does not exist: nothing to run"

# ------------------------------------------------------------------------------------- GPU parts
mnist_skip="data/mnist missing (tools/fetch_data.sh mnist, or --prepare on a machine that has it)"

if [ "$gpu" = 1 ] && [ -x "$bin" ]; then
  # every CUDA test, in the background while the sanitizers run (both check correctness only)
  run_step cuda_tests 300 ctest --test-dir "$build_dir" -L cuda -j 4 --timeout 240 --output-on-failure &
  tests_pid=$!

  san=$(command -v compute-sanitizer || true)
  if [ -z "$san" ]; then
    record sanitizer skipped 0 - "" "compute-sanitizer not found"
  else
    pids=()
    for cfg in mnist_mlp anime_small; do
      if [ "$cfg" = mnist_mlp ] && [ "$have_mnist" = 0 ]; then
        record "sanitize_${cfg}" skipped 0 - "" "$mnist_skip"; continue
      fi
      extra=()
      [ "$cfg" = anime_small ] && extra=(--set data.count=256 --batch 16)
      for mode in graph eager; do
        graphs=true; [ "$mode" = eager ] && graphs=false
        for tool in memcheck racecheck synccheck initcheck; do
          # 3 warm-up + 3 timed iterations: with graphs, the third is captured and the rest replay it
          run_step "sanitize_${cfg}_${mode}_${tool}" 240 "$san" --tool "$tool" --error-exitcode 1 --print-limit 20 \
            "$bin" bench --config "configs/$cfg.json" --steps 3 --repeats 1 --device cuda \
            --set "cuda_graphs=$graphs" "${extra[@]}" &
          pids+=($!)
        done
      done
    done
    for p in "${pids[@]}"; do wait "$p"; done
  fi
  wait "$tests_pid"

  # every cuDNN algorithm for anime_conv's convs, each direction, NCHW vs NHWC-padded, fp32/tf32/bf16
  # (issue 20: what our own kernels must beat)
  run_step conv_probe_anime_conv 150 "$bin" bench --conv-probe --config configs/anime_conv.json \
    --set data.count=256 --device cuda --json "$out_dir/conv_probe_anime_conv.json"

  # per-op profiles (eager, CUDA events), one at a time: timings need the GPU to themselves
  if [ "$have_mnist" = 1 ]; then
    run_step perop_mnist_mlp 90 "$bin" bench --config configs/mnist_mlp.json --steps 50 --repeats 3 --device cuda \
      --per-op --json "$out_dir/perop_mnist_mlp.json"
  else
    record perop_mnist_mlp skipped 0 - "" "$mnist_skip"
  fi
  run_step perop_anime_small 90 "$bin" bench --config configs/anime_small.json --set data.count=2048 --steps 20 \
    --repeats 3 --device cuda --per-op --json "$out_dir/perop_anime_small.json"
  run_step perop_anime_conv_tf32 120 "$bin" bench --config configs/anime_conv.json --set data.count=2048 \
    --set precision=tf32 --steps 5 --repeats 3 --device cuda --per-op --json "$out_dir/perop_anime_conv_tf32.json"

  # side by side with the PyTorch peer
  # the peer at its defaults (the fair bar) and at its best (--tuned, with and without bf16: the high bar)
  run_step vs_pytorch_anime_conv 260 env BUILD_DIR="$build_dir" tools/bench_vs_pytorch.sh --model conv \
    --batches 64 --set data.count=2048 --steps 10 --repeats 5 --peer-modes "fp32 bf16 tuned tuned-bf16"
  if [ "$have_mnist" = 1 ]; then
    run_step vs_pytorch_mnist_mlp 150 env BUILD_DIR="$build_dir" tools/bench_vs_pytorch.sh --model mlp \
      --batches "64 8192" --peer-modes eager
  else
    record vs_pytorch_mnist_mlp skipped 0 - "" "$mnist_skip"
  fi
fi

# ----------------------------------------------------------------------------------------- report
python3 - "$out_dir" "$gpu" "$gpu_note" "$(elapsed)" "$budget" <<'PY'
import json, os, re, sys
out, gpu, gpu_note, secs, budget = sys.argv[1], sys.argv[2] == "1", sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
steps = []
for line in open(os.path.join(out, "steps.tsv")):
    name, status, s, rc, log, note = (line.rstrip("\n").split("\t") + [""] * 6)[:6]
    steps.append({"name": name, "status": status, "seconds": int(s) if s.isdigit() else 0,
                  "rc": rc, "log": log, "note": note})
def text(rel):
    p = os.path.join(out, rel)
    return open(p, errors="replace").read() if rel and os.path.isfile(p) else ""
for st in steps:  # what each part found
    t = text(st["log"])
    if st["name"].startswith("sanitize_"):
        m = re.findall(r"(?:ERROR SUMMARY: |RACECHECK SUMMARY: \d+ hazards? displayed \()(\d+) error", t)
        st["sanitizer_errors"] = int(m[-1]) if m else None
        # racecheck on Hopper reports hazards inside cuDNN's own warp-group (sm90_xmma) kernels, whose
        # asynchronous copies it does not follow: name the kernels, and when every hazard is inside a
        # library's kernel and the run itself finished, say so as a warning rather than a failure
        races = {}
        for k in re.findall(r"Race reported between \w+ access at (\S+?)\+0x", t):
            races[k] = races.get(k, 0) + 1
        if races:
            st["race_kernels"] = races
            lib = lambda k: any(w in k for w in ("cudnn", "xmma", "cublas", "cutlass")) or k.startswith(("sm80_", "sm90_"))
            ours = [k for k in races if not lib(k)]
            finished = '"ms_per_iter"' in t
            if not ours and finished and st["status"] == "fail":
                st["status"] = "warn"
            st["note"] = ("hazards only inside library kernels: " if not ours else "hazards in OUR kernels: " + ", ".join(ours) + "; all: ") + \
                ", ".join(f"{k} ({n} reports)" for k, n in sorted(races.items())) + \
                ("" if finished else "; the run did not finish (no bench line)") + "; " + st["note"]
    if st["name"] == "cuda_tests":
        m = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", t)
        if m: st["tests"] = {"failed": int(m.group(2)), "total": int(m.group(3))}
        st["failed_tests"] = re.findall(r"\d+ - (\S+) \((?:Failed|Timeout|SEGFAULT|Subprocess aborted)", t)
    if st["name"].startswith("perop_") or st["name"].startswith("vs_pytorch"):
        st["json_lines"] = [json.loads(l) for l in t.splitlines() if l.startswith("{") and l.endswith("}")]
    if st["name"].startswith("vs_pytorch"):
        st["table"] = "\n".join(l for l in t.splitlines() if l.startswith("|"))
    if st["name"].startswith("conv_probe"):
        st["table"] = t[t.find("Convolution probe"):].strip() if "Convolution probe" in t else ""
    if st["name"].startswith("perop_"):
        st["table"] = t[t.find("Timed in ops"):t.rfind("\n{")].strip() if "Timed in ops" in t else ""
bad = [s for s in steps if s["status"] in ("fail", "timeout")]
warn = [s for s in steps if s["status"] == "warn"]
report = {"gpu": gpu, "gpu_note": gpu_note, "seconds": secs, "budget_seconds": budget,
          "parts_failed": [s["name"] for s in bad], "parts_warned": [s["name"] for s in warn], "steps": steps,
          "environment": text("logs/environment.log").splitlines()}
json.dump(report, open(os.path.join(out, "report.json"), "w"), indent=1)
md = ["# tools/gpu_check.sh report", "", f"- GPU: {gpu_note}", f"- took {secs} s (budget {budget} s)",
      f"- failed parts: {', '.join(s['name'] for s in bad) or 'none'}",
      f"- warnings: {', '.join(s['name'] for s in warn) or 'none'}", "",
      "| part | status | s | note |", "| --- | --- | ---: | --- |"]
for s in steps:
    note = s["note"]
    if "sanitizer_errors" in s: note = f"{s['sanitizer_errors']} sanitizer errors; " + note
    if "tests" in s: note = f"{s['tests']['failed']} of {s['tests']['total']} failed {' '.join(s['failed_tests'])}; " + note
    md.append(f"| {s['name']} | {s['status']} | {s['seconds']} | {note.replace('|', '/')} |")
for s in steps:
    if s.get("table"):
        md += ["", f"## {s['name']}", "", s["table"]]
md += ["", "Logs: logs/<part>.log. Environment:", ""] + ["    " + l for l in report["environment"]]
open(os.path.join(out, "report.md"), "w").write("\n".join(md) + "\n")
PY
say "report: $out_dir/report.md, $out_dir/report.json ($(elapsed) s)"
if [ ! -x "$bin" ]; then
  say "the build failed (see $logs/build.log)"
  exit 1
fi
[ "$gpu" = 1 ] || say "$gpu_note; $bin is built, nothing else to run"
exit 0
