#!/usr/bin/env bash
# mpirun for one machine, with the settings a container or CI runner needs (docs/DISTRIBUTED.md):
#   tools/mpirun.sh -np 2 build/cgan_gpu --config configs/mnist_mlp.json
# - as root (containers, CI), Open MPI refuses to start unless told that this is intended;
# - more ranks than cores is allowed (--oversubscribe), no binding of ranks to cores (hwloc);
# - ranks talk through shared memory and loopback only (btl self,vader: no network needed) and
#   without the kernel's cross-memory attach (often forbidden in containers);
# - mpirun answers Ctrl-C/SIGTERM by sending SIGTERM to every rank and SIGKILL after
#   odls_base_sigkill_timeout seconds (default 1): 10 here, so that the ranks finish the step and
#   rank 0 writes its checkpoint (cgan_gpu's clean stop) before the launcher kills them. The same
#   delay applies when a rank dies: the survivors, blocked in an all-reduce, are killed after it.
#   Raise it for models whose checkpoint takes longer to write (anime_conv on a slow disk).
# Every setting can be overridden by exporting the OMPI_MCA_* variable first. Across machines use
# mpirun itself with a hostfile (see docs/DISTRIBUTED.md).
set -euo pipefail
if ! command -v mpirun >/dev/null 2>&1; then
  echo "tools/mpirun.sh: mpirun not found; install Open MPI (tools/setup.sh installs openmpi-bin)" >&2
  exit 127
fi
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_btl="${OMPI_MCA_btl:-self,vader}"
export OMPI_MCA_btl_vader_single_copy_mechanism="${OMPI_MCA_btl_vader_single_copy_mechanism:-none}"
export OMPI_MCA_hwloc_base_binding_policy="${OMPI_MCA_hwloc_base_binding_policy:-none}"
export OMPI_MCA_rmaps_base_oversubscribe="${OMPI_MCA_rmaps_base_oversubscribe:-1}"
export OMPI_MCA_odls_base_sigkill_timeout="${OMPI_MCA_odls_base_sigkill_timeout:-10}"
# no ssh/rsh is needed on one machine; Open MPI 4 refuses to start when neither exists
if ! command -v ssh >/dev/null 2>&1 && ! command -v rsh >/dev/null 2>&1; then
  export OMPI_MCA_plm_rsh_agent="${OMPI_MCA_plm_rsh_agent:-false}"
fi
exec mpirun "$@"
