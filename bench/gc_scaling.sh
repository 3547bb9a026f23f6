#!/usr/bin/env bash
# Scaling of guess-and-check from 1 to 2 worker ranks through `gdlab run` (real MPI units, merged
# on rank 0): runs bench/gc_scaling.textproto with mpirun -n 2 (one worker) and -n 3 (two
# workers) and prints guesses/s = total guesses / sampling seconds (the last progress row).
# Usage: bench/gc_scaling.sh [BUILD_DIR]   (run on an otherwise idle machine)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$repo/build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-8s %14s %10s %14s\n' ranks workers guesses seconds guesses/s
for np in 2 3; do
  timeout 900 mpirun --oversubscribe -n "$np" "$build/gdlab" run "$repo/bench/gc_scaling.textproto" \
    --out "$out/np$np.h5" --quiet
  /usr/bin/python3 - "$out/np$np.h5" "$np" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
g = f["tasks/task_000000"]
p = g["progress"]
seconds = float(p["time"][-1])
guesses = float(g.attrs["total_guesses"])
np_ = int(sys.argv[2])
print(f"{np_:<8d} {np_ - 1:<8d} {guesses:14.4g} {seconds:10.3f} {guesses / seconds:14.4g}")
PY
done
