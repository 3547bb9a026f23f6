#!/usr/bin/env bash
# Side by side: gdlab's parameter server vs a plain mpi4py one, 1 server + 3 workers (4 ranks,
# oversubscribed on this 2-core machine), quadratic, P = 10, 1e3, 1e5 (issue 4 §3).
# Usage: bench/ps_compare.sh [BUILD_DIR]      (needs BUILD_DIR/bench/ps_bench, -DGDLAB_BUILD_BENCH=ON)
# Prints the load average before and after (the machine is shared: compare numbers taken at low load),
# the shared-memory transport OpenMPI uses, then:
#   1. OpenMPI defaults: gdlab (direct MPI link, out-of-place step), the same with the step in place
#      (as the kind's optimiser), gdlab over the Transport link, mpi4py;
#   2. --mca btl_vader_eager_limit 16384, for both (P = 1e3's 8 KB messages go eager instead of
#      through the rendezvous protocol);
#   3. P = 1e5 with the single-copy mechanism off (--mca btl_vader_single_copy_mechanism none), for
#      both, to show what CMA buys.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
bench="$build/bench/ps_bench"
py="/usr/bin/python3 $root/bench/ps_mpi4py.py"
run() { timeout 600 mpirun --oversubscribe -n 4 "$@"; }

echo "load average before: $(cat /proc/loadavg)"
echo "OpenMPI $(ompi_info --version 2>/dev/null | head -1 | awk '{print $NF}'), vader single copy:" \
  "$(ompi_info --param btl vader --level 9 2>/dev/null | grep -o 'single_copy_mechanism" (current value: "[a-z]*' | awk -F'"' '{print $NF}')," \
  "xpmem: $([ -e /dev/xpmem ] && echo available || echo 'not available (no /dev/xpmem)')," \
  "transparent huge pages: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)"

echo "== 1. OpenMPI defaults =="
run "$bench" 10 1000 100000
run "$bench" --in-place 10 1000 100000
run "$bench" --transport 10 1000 100000
run $py 10 1000 100000

echo "== 2. --mca btl_vader_eager_limit 16384 =="
run --mca btl_vader_eager_limit 16384 "$bench" 10 1000 100000
run --mca btl_vader_eager_limit 16384 $py 10 1000 100000

echo "== 3. P = 1e5 without single copy (--mca btl_vader_single_copy_mechanism none) =="
run --mca btl_vader_single_copy_mechanism none "$bench" --updates 1000 100000
run --mca btl_vader_single_copy_mechanism none $py 100000

echo "load average after: $(cat /proc/loadavg)"
