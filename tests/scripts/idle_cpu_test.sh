#!/usr/bin/env bash
# No spinning (platform.md §2): while its single worker computes for seconds, the coordinator polls
# with backoff and must use under 10% of a core (a blocking MPI_Recv burns about 75%).
source "$(dirname "$0")/lib.sh"
gdlab=$1 spec=$2 dir=$3 python=$4
rm -rf "$dir" && mkdir -p "$dir"
gdlab_mpirun 120 2 "$gdlab" run "$spec" --out "$dir/idle.h5" --quiet || fail "run exited $?"
"$python" - "$dir/idle.h5.log" <<'PY'
import json, sys
finish = [json.loads(l) for l in open(sys.argv[1]) if '"finish"' in l][-1]
wall, cpu = finish["wall_seconds"], finish["coordinator_cpu_seconds"]
print(f"coordinator: {cpu:.3f} s CPU over {wall:.3f} s wall ({100 * cpu / wall:.1f}% of a core)")
assert wall >= 1.0, f"the task was too short to measure idling ({wall:.2f} s)"
assert cpu < 0.10 * wall, "the coordinator is spinning"
PY
echo "idle_cpu_test: OK"
