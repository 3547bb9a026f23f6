# Shared helpers for the test scripts. Every mpirun runs under `timeout` (platform.md §1.3).
set -euo pipefail
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

fail() { echo "FAIL: $*" >&2; exit 1; }

# gdlab_mpirun SECONDS NP ARGS...: mpirun with a wall-clock limit; returns gdlab's exit code.
gdlab_mpirun() {
  local limit=$1 np=$2
  shift 2
  timeout --signal=KILL "$limit" mpirun --oversubscribe -n "$np" "$@"
}
