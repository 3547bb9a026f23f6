#!/usr/bin/env bash
# SIGKILL every rank of a running campaign: the file still opens, and holds at least every row
# that the last logged flush had written (platform.md §5.4).
source "$(dirname "$0")/lib.sh"
gdlab=$1 spec=$2 dir=$3 python=$4 check=$5
rm -rf "$dir" && mkdir -p "$dir"
out=$dir/crash.h5

timeout --signal=KILL 120 mpirun --oversubscribe -n 3 "$gdlab" run "$spec" --out "$out" --quiet &
launcher=$!
# Wait for three flushes with data in them.
for _ in $(seq 1 600); do
  n=$(grep -c '"event": "flush", "rows_total": [1-9]' "$out.log" 2>/dev/null || true)
  [ "${n:-0}" -ge 3 ] && break
  sleep 0.05
done
[ "${n:-0}" -ge 3 ] || fail "the run never flushed 3 times"
mpirun_pid=$(pgrep -P "$launcher" -x mpirun) || fail "mpirun not found"
ranks=$(pgrep -P "$mpirun_pid" -x gdlab | tr '\n' ' ')
[ -n "$ranks" ] || fail "no gdlab ranks under mpirun $mpirun_pid"
# shellcheck disable=SC2086
kill -KILL $ranks
rc=0
wait "$launcher" || rc=$?
[ "$rc" -ne 0 ] || fail "mpirun exited 0 after its ranks were killed"
echo "killed ranks $ranks; mpirun exited $rc"
"$python" "$check" "$out" || fail "the crashed file does not hold the flushed rows"
"$python" - "$out" <<'PY' || fail "the crashed file is not a mid-run file"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    status = f.attrs["gdlab_status"]
    statuses = [f["tasks"][t].attrs["status"] for t in f["tasks"]]
    done = statuses.count("done")
    print(f"gdlab_status={status} done={done}/{len(statuses)}")
    assert status == "running", status
    assert 0 < done < len(statuses), done
PY
echo "crash_test: OK"
