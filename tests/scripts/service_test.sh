#!/usr/bin/env bash
# `gdlab serve` end to end, over real loopback TCP with a real mpirun: two campaigns interleaved
# and watched to completion; cancel; tokens; input confinement; malformed frames while another
# client completes; 200 concurrent watchers; SIGTERM drains and exits 0 with every file readable.
source "$(dirname "$0")/lib.sh"
gdlab=$1 probe=$2 data_src=$3 dir=$4 python=$5 check=$6
rm -rf "$dir" && mkdir -p "$dir"
data=$dir/data
log=$dir/serve.log

timeout --signal=KILL 300 mpirun --oversubscribe -n 3 "$gdlab" serve --data "$data" --listen 127.0.0.1:0 \
  --read-timeout-ms 1000 >"$log" 2>&1 &
launcher=$!
cleanup() { kill -KILL "$launcher" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 200); do [ -s "$data/endpoint" ] && [ -s "$data/pid" ] && break; sleep 0.05; done
[ -s "$data/endpoint" ] || fail "the server did not start: $(cat "$log")"
server=$(cat "$data/endpoint")
export GDLAB_SERVER=$server
token=$data/token
[ "$(stat -c %a "$token")" = "600" ] || fail "token file mode is $(stat -c %a "$token"), expected 600"
grep -q "MPI thread level MPI_THREAD_" "$log" || fail "the server does not report its MPI thread level"

# Two campaigns: a long one, then a short one submitted later; the short one must not wait for
# the long one (fair interleaving).
long=$("$gdlab" submit "$data_src/service_long.textproto" --token-file "$token") || fail "submit long"
short=$("$gdlab" submit "$data_src/small_sweep.textproto" --token-file "$token") || fail "submit short"
"$gdlab" watch "$short" >"$dir/watch_short.jsonl" || fail "watch short exited $?"
grep -q '"type":"campaign_finished"' "$dir/watch_short.jsonl" || fail "watch stream has no finish event"
state=$("$gdlab" status "$long" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["state"])')
[ "$state" = "running" ] || fail "long campaign is '$state' when the short one finished (starved or too fast?)"
echo "ok: short campaign $short completed while long campaign $long was still running"

# Tokens: state-changing calls need the right one; read-only calls need none.
rc=0; "$gdlab" cancel "$long" 2>"$dir/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "needs the server's token" "$dir/err" || fail "cancel without token: rc $rc"
echo nope >"$dir/wrong_token"
rc=0; "$gdlab" cancel "$long" --token-file "$dir/wrong_token" 2>"$dir/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "wrong token (unauthorized)" "$dir/err" || fail "cancel with a wrong token: rc $rc"
rc=0; "$gdlab" shutdown --token-file "$dir/wrong_token" 2>"$dir/err" || rc=$?
[ "$rc" -eq 2 ] || fail "shutdown with a wrong token: rc $rc"
"$gdlab" list >"$dir/list" || fail "list"
echo "ok: tokens"

# Cancel the long campaign: it ends "cancelled", its file is consistent.
"$gdlab" cancel "$long" --token-file "$token" >/dev/null || fail "cancel exited $?"
rc=0; "$gdlab" watch "$long" >"$dir/watch_long.jsonl" || rc=$?
[ "$rc" -eq 1 ] || fail "watch of a cancelled campaign exited $rc, expected 1"
tail -n 1 "$dir/watch_long.jsonl" | grep -q '"state":"cancelled"' || fail "the cancelled campaign's last event is not cancelled"
"$python" "$check" "$data"/campaign_000${long}_long.h5 --expect-status cancelled --expect-some-cancelled \
  || fail "cancelled file"
"$python" "$check" "$data"/campaign_000${short}_small_sweep.h5 --expect-status complete --expect-done 7 \
  || fail "short file"
echo "ok: cancel"

# Input files only from the allowed input directories.
cp "$data_src/points.csv" "$data/inputs/points.csv"
csv=$("$gdlab" submit "$data_src/service_csv.textproto" --token-file "$token") || fail "csv submit"
"$gdlab" watch "$csv" >/dev/null || fail "csv campaign did not complete"
rc=0; "$gdlab" submit "$data_src/service_escape.textproto" --token-file "$token" 2>"$dir/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "outside the allowed input directories" "$dir/err" || fail "escape: rc $rc $(cat "$dir/err")"
rc=0; "$gdlab" submit "$data_src/bad/negative_lr.textproto" --token-file "$token" 2>"$dir/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "negative_lr.textproto:8:5: experiments\[0\].separable_gd.lr" "$dir/err" \
  || fail "invalid spec: rc $rc $(cat "$dir/err")"
rc=0; "$gdlab" submit "$data_src/async_mpi.textproto" --token-file "$token" 2>"$dir/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "runs on 3 worker ranks but this job has 2" "$dir/err" || fail "too-big group task: rc $rc $(cat "$dir/err")"
echo "ok: input confinement and spec errors"

# Malformed frames close their own connection only, while another client completes.
third=$("$gdlab" submit "$data_src/small_sweep.textproto" --token-file "$token") || fail "submit third"
"$gdlab" watch "$third" >/dev/null &
watcher=$!
"$probe" malformed "$server" || fail "malformed frames were not handled"
wait "$watcher" || fail "a concurrent watcher failed while malformed frames were sent"
echo "ok: malformed frames"

# 200 concurrent watchers of one campaign, each reads its stream to the end.
many=$("$gdlab" submit "$data_src/all_kinds.textproto" --token-file "$token") || fail "submit many"
"$probe" watchers "$server" "$many" 200 || fail "200 watchers"
echo "ok: 200 watchers"

# SIGTERM to the coordinator drains: the running campaign ends "drained", every file is readable,
# the job exits 0.
last=$("$gdlab" submit "$data_src/service_long.textproto" --token-file "$token") || fail "submit last"
sleep 0.7
kill -TERM "$(cat "$data/pid")"
rc=0; wait "$launcher" || rc=$?
trap - EXIT
[ "$rc" -eq 0 ] || fail "the served job exited $rc after SIGTERM: $(tail -5 "$log")"
grep -q "draining" "$log" || fail "no drain message"
"$python" "$check" "$data"/campaign_000${last}_long.h5 --expect-status drained || fail "drained file"
for f in "$data"/campaign_*.h5; do "$python" "$check" "$f" >/dev/null || fail "$f is not readable"; done
echo "service_test: OK"
