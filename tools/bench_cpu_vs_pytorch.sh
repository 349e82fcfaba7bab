#!/usr/bin/env bash
# Side-by-side CPU benchmark, in one run: `cgan_gpu bench --device cpu` against the same model in
# PyTorch on the CPU (tools/bench_cpu_pytorch.py, /usr/bin/python3 with Debian's python3-torch) for
# mnist_mlp, mnist_lsgan_embed and anime_small, and the ratio PyTorch / cgan_gpu.
#
#   tools/bench_cpu_vs_pytorch.sh [--bin build/cgan_gpu] [--repeats 5] [--models "mnist_mlp ..."]
#                                 [--threads "1 2"] [--steps N]
#
# Each side reports the median ms per training iteration over --repeats timed blocks of --steps
# iterations (default per model: 200, 50, 10), after a warm-up block. cgan_gpu runs with
# CGAN_CPU_THREADS=1 and 2, PyTorch with 1 and 2 threads (--threads)
# (torch.set_num_threads, OMP_NUM_THREADS and OPENBLAS_NUM_THREADS alike, since Debian's torch runs
# its GEMMs on OpenBLAS), each with its default OpenBLAS kernels and with OPENBLAS_CORETYPE set to
# the best core this CPU's instruction set allows (SkylakeX with AVX-512, Haswell with AVX2): the
# best of each side is compared. Prints one JSON line per measurement, then a Markdown table for
# docs/PERFORMANCE.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="${BUILD_DIR:-build}/cgan_gpu"
repeats=5
models="mnist_mlp mnist_lsgan_embed anime_small"
py=/usr/bin/python3
thread_counts="1 2"
steps_override=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --threads) thread_counts="$2"; shift 2 ;;
    --steps) steps_override="$2"; shift 2 ;;
    *) echo "bench_cpu_vs_pytorch.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "bench_cpu_vs_pytorch.sh: $bin not built (run tools/build.sh)" >&2; exit 1; }
"$py" -c "import torch" 2>/dev/null || { echo "bench_cpu_vs_pytorch.sh: $py cannot import torch (tools/setup.sh installs python3-torch)" >&2; exit 1; }

best_core=""
grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && best_core=Haswell
grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo &&
  grep -qw avx512dq /proc/cpuinfo && best_core=SkylakeX
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores; OpenBLAS core for PyTorch: default${best_core:+ and $best_core}"

field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p"; }
# min over "ms label" lines -> "ms label"
best_of() { sort -g | head -n 1; }
rows=()
for m in $models; do
  case "$m" in
    mnist_mlp) steps=200 ;;
    mnist_lsgan_embed) steps=50 ;;
    anime_small) steps=10 ;;
    *) echo "bench_cpu_vs_pytorch.sh: unknown model '$m'" >&2; exit 2 ;;
  esac
  steps=${steps_override:-$steps}
  ours=()
  theirs=()
  for t in $thread_counts; do
    j=$(CGAN_CPU_THREADS=$t "$bin" bench --config "configs/$m.json" --device cpu --steps "$steps" --repeats "$repeats")
    echo "$j"
    ours+=("$(echo "$j" | field ms_per_iter) $t")
    for core in "" $best_core; do
      j=$(env ${core:+OPENBLAS_CORETYPE=$core} OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t \
        "$py" tools/bench_cpu_pytorch.py --model "$m" --threads "$t" --steps "$steps" --repeats "$repeats")
      echo "${j%\}}, \"openblas_core\": \"${core:-default}\"}"
      theirs+=("$(echo "$j" | field ms_per_iter) $t,${core:-default}")
    done
  done
  read -r o_ms o_t < <(printf '%s\n' "${ours[@]}" | best_of)
  read -r p_ms p_how < <(printf '%s\n' "${theirs[@]}" | best_of)
  ratio=$(awk -v a="$p_ms" -v b="$o_ms" 'BEGIN { printf "%.2f", a / b }')
  rows+=("| $m | $o_ms | $o_t | $p_ms | ${p_how%%,*} | ${p_how#*,} | ${ratio}x |")
done
echo
echo "| config | cgan_gpu ms | threads | PyTorch best ms | threads | PyTorch OpenBLAS core | PyTorch / cgan_gpu |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
