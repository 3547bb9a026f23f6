#!/usr/bin/env bash
# The README's demo command: install, build, run the default campaign under mpirun on the local
# cores, write results/default.h5 and figures under results/default-report/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${GDLAB_BUILD_DIR:-$root/build}
bash "$root/deploy/build.sh"
mkdir -p "$root/results"
out=$root/results/default.h5
report=$root/results/default-report
cores=$(nproc)
ranks=$(( cores + 1 ))   # one coordinator (mostly idle, it polls with backoff) + one worker per core
[ "$ranks" -ge 3 ] || ranks=3
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
timeout 1800 mpirun --oversubscribe -n "$ranks" "$build/gdlab" run "$root/examples/default.textproto" \
  --out "$out" --force
(cd "$root" && /usr/bin/python3 -m analysis.report "$out" --out "$report")
echo
echo "HDF5 file: $out"
echo "figures and table: $report/"
