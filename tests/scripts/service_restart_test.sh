#!/usr/bin/env bash
# The service after a restart (issue 8 §2): a `gdlab serve` job killed (SIGKILL of every rank) or
# drained (SIGTERM) mid-campaign leaves its file in DATA; the next server on the same DATA takes
# the campaign up again under its id, continues it with --resume semantics, and the finished file
# equals an uninterrupted `gdlab run` of the same spec bitwise (compare_observables.py). New
# submissions get fresh ids: no earlier file is ever replaced.
source "$(dirname "$0")/lib.sh"
gdlab=$1 data_src=$2 dir=$3 python=$4 compare=$5
rm -rf "$dir" && mkdir -p "$dir"
data=$dir/data
spec=$data_src/service_long.textproto
start_s=$(date +%s.%N)

gdlab_mpirun 180 3 "$gdlab" run "$spec" --out "$dir/reference.h5" --quiet || fail "reference run exited $?"

launcher=
start_server() {  # start_server LOG
  rm -f "$data/endpoint" "$data/pid"
  timeout --signal=KILL 300 mpirun --oversubscribe -n 3 "$gdlab" serve --data "$data" --listen 127.0.0.1:0 \
    >"$1" 2>&1 &
  launcher=$!
  for _ in $(seq 1 200); do [ -s "$data/endpoint" ] && [ -s "$data/pid" ] && break; sleep 0.05; done
  [ -s "$data/endpoint" ] || fail "the server did not start: $(cat "$1")"
  export GDLAB_SERVER; GDLAB_SERVER=$(cat "$data/endpoint")
}
tasks_done() { "$gdlab" status "$1" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["tasks_done"])'; }
wait_done_at_least() {  # ID N
  for _ in $(seq 1 400); do [ "$(tasks_done "$1")" -ge "$2" ] && return 0; sleep 0.05; done
  fail "campaign $1 did not reach $2 done tasks"
}
cleanup() { [ -n "$launcher" ] && kill -KILL "$launcher" 2>/dev/null || true; }
trap cleanup EXIT

# 1. Submit, let some tasks finish, then SIGKILL every rank (a crashed or preempted job).
start_server "$dir/serve1.log"
id=$("$gdlab" submit "$spec" --token-file "$data/token") || fail "submit"
file=$data/campaign_000${id}_long.h5
wait_done_at_least "$id" 8
mpirun_pid=$(pgrep -P "$launcher" -x mpirun || true)
ranks=$([ -n "$mpirun_pid" ] && pgrep -P "$mpirun_pid" -x gdlab || true)
# shellcheck disable=SC2086
[ -n "$ranks" ] && kill -KILL $ranks
wait "$launcher" || true
killed_with=$("$python" -c "import h5py,sys; t=h5py.File(sys.argv[1],'r')['tasks']; \
print(sum(t[k].attrs['status'] in (b'done','done') for k in t))" "$file") || fail "the killed server's file is unreadable"
echo "killed the server with $killed_with tasks done in $file"

# 2. A new server on the same DATA resumes it; a new submission gets the next id.
start_server "$dir/serve2.log"
grep -q "campaign $id was running when the last server stopped: resuming" "$dir/serve2.log" \
  || fail "the restarted server did not take up campaign $id: $(cat "$dir/serve2.log")"
other=$("$gdlab" submit "$data_src/small_sweep.textproto" --token-file "$data/token") || fail "submit second"
[ "$other" -gt "$id" ] || fail "a new campaign got id $other, not after the resumed $id"
before=$(tasks_done "$id")
[ "$before" -ge "$killed_with" ] || fail "the resumed campaign reports $before done, fewer than the $killed_with in its file"
wait_done_at_least "$id" $((before + 6))
# 3. Drain it mid-way (SIGTERM): running tasks finish, the file ends "drained".
kill -TERM "$(cat "$data/pid")"
rc=0; wait "$launcher" || rc=$?
[ "$rc" -eq 0 ] || fail "the drained server exited $rc"

# 4. A third server finishes it.
start_server "$dir/serve3.log"
grep -q "campaign $id was drained when the last server stopped: resuming" "$dir/serve3.log" \
  || fail "the third server did not take up the drained campaign: $(cat "$dir/serve3.log")"
"$gdlab" watch "$id" >"$dir/watch.jsonl" || fail "watch of the resumed campaign exited $?"
"$gdlab" shutdown --token-file "$data/token" >/dev/null || fail "shutdown"
rc=0; wait "$launcher" || rc=$?
trap - EXIT
[ "$rc" -eq 0 ] || fail "the third server exited $rc"
"$python" "$compare" "$dir/reference.h5" "$file" || fail "the campaign finished over three servers differs from the reference"
[ -e "$data/campaign_000${other}_small_sweep.h5" ] || fail "the second campaign's file is missing"
secs=$("$python" -c "import sys,time; print(round(time.time()-float(sys.argv[1]),1))" "$start_s")
echo "service_restart_test: OK: SIGKILL with $killed_with/60 done, resumed, drained, resumed, equal to gdlab run; ${secs} s"
