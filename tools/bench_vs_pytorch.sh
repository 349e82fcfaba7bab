#!/usr/bin/env bash
# Side-by-side benchmark on one GPU, in one run: cgan_gpu's median ms per training iteration and the
# PyTorch peer's (../shared/bench/pytorch_reference.py) for the same model and batch sizes, and the
# ratio. Run on the GPU machine after building (tools/build.sh or a carried build/):
#
#   tools/bench_vs_pytorch.sh [--model mlp|conv] [--batches "64 8192"] [--bin build/cgan_gpu]
#                             [--steps N] [--repeats R] [--set KEY=VALUE]... [--peer-modes "eager compile"]
#
# mlp: configs/mnist_mlp.json vs the peer eager and --compile (default batches 64 and 8192).
# conv: configs/anime_conv.json (seed 001) vs the peer at PyTorch's defaults (fp32, --bf16) and at its
# best (--tuned: channels-last, cudnn.benchmark, non-deterministic algorithms, TF32 matmuls, fused
# Adam; with --bf16, with --compile) (default batch 64); cgan_gpu's device memory in use (no
# allocation happens inside a step, so it is the peak) is printed too.
# --steps/--repeats: cgan_gpu's iterations per timed repeat and repeats (default mlp 200, conv 20; 7);
# --set: passed to cgan_gpu bench (e.g. data.count=2048: the peer draws from 2048 random images too);
# --peer-modes: which peer runs (mlp: eager compile, default both; conv: fp32 bf16 tuned tuned-bf16
# tuned-compile tuned-bf16-compile, default the first four: compiling takes minutes).
#
# Prints one JSON line per measurement and a Markdown table for docs/PERFORMANCE.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
model=mlp
batches=""
steps=""
repeats=7
peer_sel=""
sets=()
bin="${BUILD_DIR:-build}/cgan_gpu"
peer="${PEER:-$root/../shared/bench/pytorch_reference.py}"
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    --peer-modes) peer_sel="$2"; shift 2 ;;
    *) echo "bench_vs_pytorch.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
case "$model" in
  mlp) config=configs/mnist_mlp.json; peer_modes=("" "--compile"); : "${steps:=200}"; : "${batches:=64 8192}" ;;
  conv) config=configs/anime_conv.json; peer_modes=("" "--bf16" "--tuned" "--tuned --bf16"); : "${steps:=20}"
        : "${batches:=64}" ;;
  *) echo "bench_vs_pytorch.sh: unknown model '$model' (mlp or conv)" >&2; exit 2 ;;
esac
if [ -n "$peer_sel" ]; then
  peer_modes=()
  for m in $peer_sel; do
    case "$model:$m" in
      mlp:eager|conv:fp32) peer_modes+=("") ;;
      mlp:compile) peer_modes+=("--compile") ;;
      conv:bf16) peer_modes+=("--bf16") ;;
      conv:tuned) peer_modes+=("--tuned") ;;
      conv:tuned-bf16) peer_modes+=("--tuned --bf16") ;;
      conv:tuned-compile) peer_modes+=("--tuned --compile") ;;
      conv:tuned-bf16-compile) peer_modes+=("--tuned --bf16 --compile") ;;
      *) echo "bench_vs_pytorch.sh: --peer-modes: '$m' is not a peer mode of $model (mlp: eager compile; conv: fp32 bf16 tuned tuned-bf16 tuned-compile tuned-bf16-compile)" >&2; exit 2 ;;
    esac
  done
fi
[ -x "$bin" ] || { echo "bench_vs_pytorch.sh: $bin not built (run tools/build.sh)" >&2; exit 1; }
[ -f "$peer" ] || { echo "bench_vs_pytorch.sh: PyTorch peer not found at $peer" >&2; exit 1; }
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader

field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p"; }
rows=()
for b in $batches; do
  ours=$("$bin" bench --config "$config" --batch "$b" --steps "$steps" --repeats "$repeats" --device cuda "${sets[@]}" --set precision=fp32)
  echo "$ours"
  ours_ms=$(echo "$ours" | field ms_per_iter)
  ours_mem=$(echo "$ours" | field device_mem_mib)
  ours_tf=$("$bin" bench --config "$config" --batch "$b" --steps "$steps" --repeats "$repeats" --device cuda "${sets[@]}" --set precision=tf32)
  echo "$ours_tf"
  ours_tf_ms=$(echo "$ours_tf" | field ms_per_iter)
  for m in "${peer_modes[@]}"; do
    theirs=$(python3 "$peer" --model "$model" --batch "$b" $m | tail -n 1)
    echo "$theirs"
    theirs_ms=$(echo "$theirs" | field ms_per_iter)
    mode=${m:-eager}; mode=${mode//--/}; mode=${mode// /-}
    ratio=$(awk -v a="$theirs_ms" -v b="$ours_ms" 'BEGIN { printf "%.1f", a / b }')
    rows+=("| $model | $b | $ours_ms | $ours_tf_ms | $ours_mem | $mode | $theirs_ms | ${ratio}x |")
  done
done
echo
echo "| model | batch | cgan_gpu fp32 ms | cgan_gpu tf32 ms | cgan_gpu GPU MiB | PyTorch mode | PyTorch ms | speed-up (fp32) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
