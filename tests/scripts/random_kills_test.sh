#!/usr/bin/env bash
# SIGKILL every rank of `gdlab run` at 10 random instants (seeded), resuming after each kill (a
# resume can itself be killed at the next instant) until the campaign completes; the final file
# must equal an uninterrupted reference run bitwise (compare_observables.py). When a campaign
# completes before all 10 kills were dealt (resumes skip finished tasks, so they are short), it is
# checked and a new round starts on a new file.
# A kill before the first flush can leave no file or an unreadable one: then `--resume` is tried
# first and its answer is printed; only if it refuses (non-zero, with a message) does the test
# start fresh with --force, and it says so.
source "$(dirname "$0")/lib.sh"
gdlab=$1 spec=$2 dir=$3 python=$4 compare=$5
rm -rf "$dir" && mkdir -p "$dir"
RANDOM=${GDLAB_KILL_SEED:-20261128}
kills_wanted=10 np=3
start_s=$(date +%s.%N)

gdlab_mpirun 120 "$np" "$gdlab" run "$spec" --out "$dir/reference.h5" --quiet || fail "reference run exited $?"
kills=0 fresh_restarts=0 attempts=0 round=0

while [ "$kills" -lt "$kills_wanted" ]; do
round=$((round + 1)) round_kills=0
out=$dir/killed_$round.h5
mode=fresh
while :; do
  attempts=$((attempts + 1))
  [ "$attempts" -le 60 ] || fail "no completion after 60 attempts"
  args=(--quiet)
  case $mode in fresh) args+=(--force) ;; resume) args+=(--resume) ;; esac
  timeout --signal=KILL 120 mpirun --oversubscribe -n "$np" "$gdlab" run "$spec" --out "$out" "${args[@]}" \
    2>"$dir/err.$attempts" &
  launcher=$!
  if [ "$kills" -lt "$kills_wanted" ]; then
    # a random instant 0.20 .. 2.50 s after the start
    ms=$((200 + RANDOM % 2301))
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    if kill -0 "$launcher" 2>/dev/null; then
      mpirun_pid=$(pgrep -P "$launcher" -x mpirun || true)
      ranks=$( [ -n "$mpirun_pid" ] && pgrep -P "$mpirun_pid" -x gdlab || true)
      # shellcheck disable=SC2086
      [ -n "$ranks" ] && kill -KILL $ranks 2>/dev/null || true
      wait "$launcher" || true
      kills=$((kills + 1)) round_kills=$((round_kills + 1))
      echo "kill $kills (round $round): $mode run after ${ms} ms"
      mode=resume
      continue
    fi
  fi
  rc=0; wait "$launcher" || rc=$?
  if [ "$rc" -eq 0 ]; then break; fi
  if [ "$mode" = resume ]; then
    echo "--resume refused after a kill (rc $rc): $(head -c 400 "$dir/err.$attempts")"
    if [ -e "$out" ] && "$python" -c "import h5py,sys; f=h5py.File(sys.argv[1]); f['tasks']" "$out" 2>/dev/null; then
      fail "--resume refused a readable file"
    fi
    echo "the file is missing or unreadable (killed before its first flush): starting fresh with --force"
    fresh_restarts=$((fresh_restarts + 1))
    mode=fresh
    continue
  fi
  fail "an unkilled $mode run exited $rc: $(head -c 400 "$dir/err.$attempts")"
done

"$python" "$compare" "$dir/reference.h5" "$out" || fail "round $round: the file after $round_kills kills differs from the reference"
echo "round $round: complete after $round_kills kills, bitwise equal to the reference"
done
secs=$("$python" -c "import sys,time; print(round(time.time()-float(sys.argv[1]),1))" "$start_s")
echo "random_kills_test: OK: $kills kills survived in $round rounds ($fresh_restarts fresh restarts), $attempts runs, ${secs} s"
