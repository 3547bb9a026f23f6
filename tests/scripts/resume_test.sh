#!/usr/bin/env bash
# --resume after a SIGKILL and after a SIGTERM: the finished file equals an uninterrupted run's
# bitwise; a different spec is refused and the file is left untouched.
source "$(dirname "$0")/lib.sh"
gdlab=$1 spec=$2 dir=$3 python=$4 compare=$5 check=$6
rm -rf "$dir" && mkdir -p "$dir"

gdlab_mpirun 120 3 "$gdlab" run "$spec" --out "$dir/reference.h5" --quiet || fail "reference run exited $?"

# wait_for_flushes FILE N: until FILE.log has N flush lines with data.
wait_for_flushes() {
  for _ in $(seq 1 600); do
    n=$(grep -c '"event": "flush", "rows_total": [1-9]' "$1.log" 2>/dev/null || true)
    [ "${n:-0}" -ge "$2" ] && return 0
    sleep 0.05
  done
  fail "$1 never flushed $2 times"
}

# 1. SIGKILL every rank mid-run, then resume.
timeout --signal=KILL 120 mpirun --oversubscribe -n 3 "$gdlab" run "$spec" --out "$dir/killed.h5" --quiet &
launcher=$!
wait_for_flushes "$dir/killed.h5" 3
mpirun_pid=$(pgrep -P "$launcher" -x mpirun) || fail "mpirun not found"
# shellcheck disable=SC2046
kill -KILL $(pgrep -P "$mpirun_pid" -x gdlab)
wait "$launcher" || true
done_before=$("$python" -c "import h5py,sys; f=h5py.File(sys.argv[1]); print(sum(f['tasks'][t].attrs['status']=='done' for t in f['tasks']))" "$dir/killed.h5")
[ "$done_before" -lt 30 ] || fail "the run finished before it was killed"
gdlab_mpirun 120 3 "$gdlab" run "$spec" --out "$dir/killed.h5" --resume --quiet || fail "resume exited $?"
"$python" "$check" "$dir/killed.h5" --expect-status complete --expect-done 30 || fail "resumed file"
"$python" "$compare" "$dir/reference.h5" "$dir/killed.h5" || fail "the resumed file differs from the reference"
echo "ok: SIGKILL with $done_before/30 tasks done, resumed, bitwise equal to the reference"

# 2. SIGTERM to the coordinator: flush, close as interrupted, exit 3; then resume.
timeout --signal=KILL 120 mpirun --oversubscribe -n 3 "$gdlab" run "$spec" --out "$dir/term.h5" --quiet &
launcher=$!
wait_for_flushes "$dir/term.h5" 3
pid=$("$python" -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['pid'])" "$dir/term.h5.log")
kill -TERM "$pid"
rc=0; wait "$launcher" || rc=$?
[ "$rc" -eq 3 ] || fail "mpirun exited $rc after SIGTERM to the coordinator, expected 3"
"$python" "$check" "$dir/term.h5" --expect-status interrupted || fail "interrupted file"
gdlab_mpirun 120 3 "$gdlab" run "$spec" --out "$dir/term.h5" --resume --quiet || fail "resume after SIGTERM exited $?"
"$python" "$compare" "$dir/reference.h5" "$dir/term.h5" || fail "the file resumed after SIGTERM differs"
echo "ok: SIGTERM -> exit 3, resumed, bitwise equal to the reference"

# 3. One worker rank dies: the job ends non-zero within seconds (no hang); --resume completes it.
timeout --signal=KILL 120 mpirun --oversubscribe -n 3 "$gdlab" run "$spec" --out "$dir/rank.h5" --quiet &
launcher=$!
wait_for_flushes "$dir/rank.h5" 3
pid=$("$python" -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['pid'])" "$dir/rank.h5.log")
mpirun_pid=$(pgrep -P "$launcher" -x mpirun) || fail "mpirun not found"
victim=$(pgrep -P "$mpirun_pid" -x gdlab | grep -vx "$pid" | head -n 1)
killed_at=$(date +%s.%N)
kill -KILL "$victim"
rc=0; wait "$launcher" || rc=$?
ended_in=$("$python" -c "import sys,time; print(round(time.time()-float(sys.argv[1]),2))" "$killed_at")
[ "$rc" -ne 0 ] || fail "the job exited 0 after a worker rank died"
echo "worker rank $victim killed: the job exited $rc after ${ended_in} s"
gdlab_mpirun 120 3 "$gdlab" run "$spec" --out "$dir/rank.h5" --resume --quiet || fail "resume after rank death exited $?"
"$python" "$compare" "$dir/reference.h5" "$dir/rank.h5" || fail "the file resumed after a rank death differs"
echo "ok: rank death -> job ended (rc $rc), resumed, bitwise equal to the reference"

# 4. Another spec cannot resume this file, and the file is not touched.
before=$(md5sum < "$dir/term.h5")
sed 's/seed: 4/seed: 5/' "$spec" > "$dir/other.textproto"
rc=0; gdlab_mpirun 60 2 "$gdlab" run "$dir/other.textproto" --out "$dir/term.h5" --resume 2>"$dir/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "holds a different campaign spec" "$dir/err" || fail "a different spec: rc $rc $(cat "$dir/err")"
[ "$(md5sum < "$dir/term.h5")" = "$before" ] || fail "a refused resume modified the file"
echo "resume_test: OK"
