#!/usr/bin/env bash
# A worker that stops answering (SIGSTOP: not dead, so OpenMPI does not end the job) must not hang
# `gdlab run`: the coordinator's watchdog sees the busy worker fall silent (workers send a
# heartbeat every second while they compute), closes the file as "interrupted" and the job exits
# 4 within --worker-timeout plus a few seconds. `--resume` then completes the campaign, and the
# result equals an uninterrupted run's bitwise.
source "$(dirname "$0")/lib.sh"
gdlab=$1 spec=$2 dir=$3 python=$4 compare=$5
rm -rf "$dir" && mkdir -p "$dir"
timeout_s=2

gdlab_mpirun 120 3 "$gdlab" run "$spec" --out "$dir/reference.h5" --quiet || fail "reference run exited $?"

timeout --signal=KILL 120 mpirun --oversubscribe -n 3 "$gdlab" run "$spec" --out "$dir/stopped.h5" \
  --worker-timeout "$timeout_s" --quiet 2>"$dir/err.txt" &
launcher=$!
sleep 1.5
mpirun_pid=$(pgrep -P "$launcher" -x mpirun) || fail "mpirun not found"
victim=""
for pid in $(pgrep -P "$mpirun_pid" -x gdlab); do
  if tr '\0' '\n' <"/proc/$pid/environ" | grep -qx 'OMPI_COMM_WORLD_RANK=2'; then victim=$pid; fi
done
[ -n "$victim" ] || fail "worker rank 2 not found"
kill -STOP "$victim"
stopped_at=$(date +%s.%N)
rc=0; wait "$launcher" || rc=$?
elapsed=$(awk -v a="$(date +%s.%N)" -v b="$stopped_at" 'BEGIN { printf "%.2f", a - b }')
kill -KILL "$victim" 2>/dev/null || true
echo "stopped worker rank 2 (pid $victim); the job exited $rc after ${elapsed} s"
cat "$dir/err.txt" | head -5
[ "$rc" -eq 4 ] || fail "expected exit code 4 (silent worker), got $rc"
awk -v e="$elapsed" -v t="$timeout_s" 'BEGIN { exit !(e <= t + 5) }' || fail "took ${elapsed} s to exit (timeout ${timeout_s} s)"
grep -q "has sent nothing for" "$dir/err.txt" || fail "no clear message naming the silent worker"
status=$("$python" -c "import h5py,sys; print(h5py.File(sys.argv[1])['/'].attrs['gdlab_status'])" "$dir/stopped.h5")
[ "$status" = "interrupted" ] || fail "file status $status, expected interrupted"

gdlab_mpirun 120 3 "$gdlab" run "$spec" --out "$dir/stopped.h5" --resume --quiet || fail "--resume exited $?"
"$python" "$compare" "$dir/reference.h5" "$dir/stopped.h5" || fail "resumed file differs from the reference"
echo "PASS: silent worker detected in ${elapsed} s (timeout ${timeout_s} s), exit 4, resume equals the reference"
