#!/usr/bin/env bash
# gdlab under a real one-node Slurm (tests/slurm/slurm-local.sh), with the batch template
# deploy/slurm/gdlab-run.sbatch:
#   (a) small_sweep through sbatch + srun --mpi=pmix: the HDF5 file reads back complete, 7 tasks;
#   (b) requeue: resume.textproto, SIGTERM to the batch shell once the log shows progress
#       (`scancel --signal=TERM --batch`): the trap checkpoints the step (gdlab exits 3), the job
#       requeues itself, the 2nd run resumes; the file is complete, slurm_restart_count = 1, and
#       bitwise equal to a reference run made with plain mpirun;
#   (c) a plain `scancel ID` ends the job for good: CANCELLED, never requeued.
# The cluster is started here and stopped at the end, on failure too (EXIT trap).
#
# usage: slurm_test.sh GDLAB REPO_ROOT OUT_DIR PYTHON
# Needs root and the packages of deploy/install-deps.sh (slurmctld slurmd slurm-client munge tini).
# State dir of the cluster: $GDLAB_SLURM_TEST_DIR (default /tmp/gdlab-slurm-ctest).
# shellcheck source=tests/scripts/lib.sh
source "$(dirname "$0")/../scripts/lib.sh"
gdlab=$1 root=$2 dir=$3 python=$4
slurm_local=$root/tests/slurm/slurm-local.sh
template=$root/deploy/slurm/gdlab-run.sbatch
check=$root/tests/python/check_readback.py
compare=$root/tests/python/compare_observables.py

if [ "$(id -u)" -ne 0 ]; then
  echo "slurm_test: SKIP: needs root (the local cluster runs its daemons as root)"
  exit 77
fi
for c in slurmctld slurmd sbatch munged tini; do
  command -v "$c" >/dev/null || fail "$c not installed: run deploy/install-deps.sh"
done

gdlab=$(realpath "$gdlab")
rm -rf "$dir" && mkdir -p "$dir"
dir=$(realpath "$dir")
# its own variable, so that a developer cluster in $GDLAB_SLURM_DIR is never restarted by the test
export GDLAB_SLURM_DIR=${GDLAB_SLURM_TEST_DIR:-/tmp/gdlab-slurm-ctest}
export SLURM_CONF=$GDLAB_SLURM_DIR/slurm.conf
t_begin=$(date +%s%3N)
elapsed() { awk -v ms=$(( $(date +%s%3N) - t_begin )) 'BEGIN { printf "%.1f", ms / 1000 }'; }
note() { echo "[$(elapsed) s] $*"; }

started=""
# On any exit: show what the jobs printed when failing, stop the cluster, check nothing is left.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    for f in "$dir"/*.out; do
      [ -s "$f" ] && { echo "---- $f"; tail -n 40 "$f"; }
    done
    if bash "$slurm_local" status >/dev/null 2>&1; then echo "---- squeue"; timeout 10 squeue 2>&1 || true; fi
    [ -n "$started" ] && for f in "$GDLAB_SLURM_DIR"/log/slurmctld.log "$GDLAB_SLURM_DIR"/log/slurmd.log; do
      [ -s "$f" ] && { echo "---- tail $f"; tail -n 30 "$f"; }
    done
  fi
  bash "$slurm_local" stop || rc=1
  if bash "$slurm_local" status >/dev/null 2>&1; then
    echo "FAIL: a daemon of the test cluster is still running after stop" >&2; rc=1
  fi
  # every daemon started here names the state dir on its command line
  if left=$(pgrep -a -f -- "$GDLAB_SLURM_DIR/" ); then
    echo "FAIL: processes left after stop:" >&2; echo "$left" >&2; rc=1
  fi
  if left=$(pgrep -a -f -- "$dir/" ); then
    echo "FAIL: job processes left after stop:" >&2; echo "$left" >&2; rc=1
  fi
  note "slurm_test: exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# job_field ID FIELD: one field of `scontrol show job -o`.
job_field() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# wait_job ID SECONDS: poll every 0.5 s until the job ends (requeues are followed); the exit
# status is 0 for COMPLETED, the job's exit code, 128+signal, 200 unknown job, 201 timeout.
wait_job() {
  local id=$1 limit=$2 t0 state code prev=""
  t0=$(date +%s)
  while :; do
    state=$(job_field "$id" JobState)
    [ -n "$state" ] || { note "job $id: unknown"; return 200; }
    if [ "$state" != "$prev" ]; then
      note "job $id: $state (Reason=$(job_field "$id" Reason), Restarts=$(job_field "$id" Restarts))"
      prev=$state
    fi
    case $state in
      COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE)
        code=$(job_field "$id" ExitCode)
        [ "$state" = COMPLETED ] && return 0
        [ "${code%%:*}" != 0 ] && return "${code%%:*}"
        [ "${code##*:}" != 0 ] && return $((128 + ${code##*:}))
        return 1 ;;
    esac
    [ $(( $(date +%s) - t0 )) -lt "$limit" ] || { note "job $id: still $state after ${limit} s"; return 201; }
    sleep 0.5
  done
}

# submit NAME SPEC OUT.h5: the run template on 3 ranks (2 workers), oversubscribed on small machines.
submit() {
  GDLAB=$gdlab SPEC=$2 OUT=$3 sbatch --parsable --job-name="gdlab-$1" -n 3 --overcommit -t 10 \
    -o "$dir/$1.out" "$template"
}

# wait_for_flushes FILE N SECONDS: until FILE.log has N flush lines with data.
wait_for_flushes() {
  local t0 n
  t0=$(date +%s)
  while [ $(( $(date +%s) - t0 )) -lt "$3" ]; do
    n=$(grep -c '"event": "flush", "rows_total": [1-9]' "$1.log" 2>/dev/null || true)
    [ "${n:-0}" -ge "$2" ] && return 0
    sleep 0.05
  done
  fail "$1 never flushed $2 times in $3 s"
}

# ---- the cluster -----------------------------------------------------------------------------
note "starting the local cluster in $GDLAB_SLURM_DIR"
bash "$slurm_local" start || fail "slurm-local.sh start"
started=1
note "cluster up"
cd "$dir" || fail "cd $dir"

# ---- (a) a small campaign through sbatch + srun --mpi=pmix ----------------------------------
id=$(submit small_sweep "$root/tests/data/small_sweep.textproto" "$dir/small_sweep.h5") || fail "sbatch"
note "(a) submitted small_sweep as job $id"
rc=0; wait_job "$id" 60 || rc=$?
[ "$rc" -eq 0 ] || fail "(a) job $id ended with $rc"
"$python" "$check" "$dir/small_sweep.h5" --expect-status complete --expect-done 7 || fail "(a) readback"
note "ok (a): small_sweep complete under Slurm"

# ---- (b) checkpoint + requeue + resume ------------------------------------------------------
spec=$root/tests/data/resume.textproto
gdlab_mpirun 120 3 "$gdlab" run "$spec" --out "$dir/reference.h5" --quiet || fail "reference run exited $?"
note "(b) reference run (plain mpirun) done"
id=$(submit requeue "$spec" "$dir/requeue.h5") || fail "sbatch"
note "(b) submitted resume.textproto as job $id"
wait_for_flushes "$dir/requeue.h5" 3 60
[ "$(job_field "$id" JobState)" = RUNNING ] || fail "(b) job $id is $(job_field "$id" JobState), not RUNNING"
scancel --signal=TERM --batch "$id" || fail "scancel --signal=TERM --batch $id"
note "(b) SIGTERM sent to the batch shell of job $id"
rc=0; wait_job "$id" 120 || rc=$?
[ "$rc" -eq 0 ] || fail "(b) job $id ended with $rc"
[ "$(job_field "$id" Restarts)" = 1 ] || fail "(b) job $id restarted $(job_field "$id" Restarts) times, expected 1"
grep -q 'run 0: gdlab was interrupted (exit 3)' "$dir/requeue.out" || fail "(b) the first run was not interrupted"
grep -q 'run 0: requeued' "$dir/requeue.out" || fail "(b) the first run did not requeue itself"
grep -q 'run 1: campaign complete' "$dir/requeue.out" || fail "(b) the second run did not complete"
# the first run stopped with tasks left; the second finished them
"$python" - "$dir/requeue.h5.log" <<'EOF' || fail "(b) log"
import json, sys
ends = [e for e in map(json.loads, open(sys.argv[1])) if e["event"] == "finish"]
assert [e["status"] for e in ends] == ["interrupted", "complete"], ends
assert 0 < ends[0]["done"] < 30 and ends[1]["done"] == 30, ends
print(f"log: interrupted with {ends[0]['done']}/30 done, then complete")
EOF
"$python" "$check" "$dir/requeue.h5" --expect-status complete --expect-done 30 || fail "(b) readback"
"$python" - "$dir/requeue.h5" <<'EOF' || fail "(b) restart attributes"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    a = dict(f.attrs)
assert int(a["slurm_restart_count"]) == 1, a
assert int(a["resume_count"]) == 1, a
print("attrs: slurm_restart_count", a["slurm_restart_count"], "resume_count", a["resume_count"])
EOF
"$python" "$compare" "$dir/reference.h5" "$dir/requeue.h5" || fail "(b) the requeued run differs from the reference"
note "ok (b): interrupted, requeued, resumed; bitwise equal to the plain mpirun reference"

# ---- (c) scancel ID cancels for good -------------------------------------------------------
id=$(submit cancel "$spec" "$dir/cancel.h5") || fail "sbatch"
wait_for_flushes "$dir/cancel.h5" 1 60
scancel "$id"
rc=0; wait_job "$id" 60 || rc=$?
[ "$(job_field "$id" JobState)" = CANCELLED ] || fail "(c) job $id is $(job_field "$id" JobState), expected CANCELLED"
[ "$(job_field "$id" Restarts)" = 0 ] || fail "(c) a cancelled job was requeued"
note "ok (c): scancel ended job $id for good (no requeue)"

note "slurm_test: OK"
