#!/usr/bin/env bash
# Side by side: gdlab's parameter server vs a plain mpi4py one, 1 server + 3 workers, P = 10,
# 1e3, 1e5 (issue 4 §3). Usage: bench/ps_compare.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout 600 mpirun --oversubscribe -n 4 "$build/bench/ps_bench" 10 1000 100000
timeout 600 mpirun --oversubscribe -n 4 /usr/bin/python3 "$root/bench/ps_mpi4py.py" 10 1000 100000
