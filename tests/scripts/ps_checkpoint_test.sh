#!/usr/bin/env bash
# A long parameter-server run (async_sgd, MODE_MPI) checkpoints itself on its cadence, on SIGUSR1
# and on SIGTERM, each committed atomically by the coordinator together with the rows of the task
# in the file; --resume cuts the task back to its checkpoint and continues from it (issue 8 §2).
# Under the forced round-robin order with deterministic gradients the resumed file must equal an
# uninterrupted run bit for bit (check_ps_resume.py), after:
#   1. SIGUSR1 (checkpoint on request) then SIGTERM (checkpoint, exit 3), one resume;
#   1b. a damaged checkpoint: reported and ignored (the task reruns from scratch);
#   2. SIGKILL of every rank at 3 random (seeded) instants, resuming after each.
source "$(dirname "$0")/lib.sh"
gdlab=$1 spec=$2 dir=$3 python=$4 check=$5
rm -rf "$dir" && mkdir -p "$dir"
np=5
RANDOM=${GDLAB_KILL_SEED:-4242}
start_s=$(date +%s.%N)

checkpoints() { if [ -e "$1" ]; then grep -c "checkpoint at step" "$1" || true; else echo 0; fi; }
coordinator_pid() { "$python" -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['pid'])" "$1"; }
# The checkpoint file must be a complete gdlab checkpoint (magic, length, FNV-1a checksum).
check_ckpt() {
  "$python" - "$1" <<'PY' || fail "$1 is not a complete gdlab checkpoint"
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"GDLCKPT1", "magic"
(n,) = struct.unpack("<Q", data[8:16])
payload, (checksum,) = data[16:16 + n], struct.unpack("<Q", data[16 + n:24 + n])
h = 0xcbf29ce484222325
for b in payload:
    h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
assert h == checksum and len(data) == 24 + n, "checksum/length"
PY
}

# ---- the uninterrupted reference; its cadence (0.5 s) gives several checkpoints, all removed at the end
gdlab_mpirun 180 "$np" "$gdlab" run "$spec" --out "$dir/reference.h5" --quiet || fail "reference run exited $?"
n=$(checkpoints "$dir/reference.h5.log")
[ "$n" -ge 3 ] || fail "the reference run logged $n checkpoints on a 0.5 s cadence (expected >= 3)"
[ ! -e "$dir/reference.h5.ckpt" ] || fail "checkpoints left behind by a complete campaign"
echo "reference: $n checkpoints on the cadence"

# ---- 1. on request (SIGUSR1), then SIGTERM, then --resume
sed 's/checkpoint_interval_s: 0.5/checkpoint_interval_s: 3600/' "$spec" >"$dir/on_request.textproto"
out=$dir/term.h5 ckpt=$dir/term.h5.ckpt/task_000000.ckpt
timeout --signal=KILL 180 mpirun --oversubscribe -n "$np" "$gdlab" run "$dir/on_request.textproto" --out "$out" \
  --quiet 2>"$dir/term.err" &
launcher=$!
for _ in $(seq 1 100); do grep -q '"task_started", "task": "task_000000"' "$out.log" 2>/dev/null && break; sleep 0.05; done
sleep 1.5
kill -0 "$launcher" 2>/dev/null || fail "the run ended before SIGUSR1"
coordinator=$(coordinator_pid "$out.log")
[ "$(checkpoints "$out.log")" -eq 0 ] || fail "a checkpoint before any request (cadence 3600 s)"
kill -USR1 "$coordinator"
for _ in $(seq 1 100); do [ "$(checkpoints "$out.log")" -ge 1 ] && break; sleep 0.05; done
[ "$(checkpoints "$out.log")" -ge 1 ] || fail "SIGUSR1: no checkpoint within 5 s"
check_ckpt "$ckpt"
usr1_step=$(grep -o "checkpoint at step [0-9]*" "$out.log" | tail -1 | grep -o "[0-9]*$")
sleep 1
kill -0 "$launcher" 2>/dev/null || fail "the run ended before SIGTERM"
kill -TERM "$coordinator"
rc=0; wait "$launcher" || rc=$?
[ "$rc" -eq 3 ] || fail "SIGTERM: expected exit 3, got $rc: $(head -c 300 "$dir/term.err")"
check_ckpt "$ckpt"
term_step=$(grep -o "checkpoint at step [0-9]*" "$out.log" | tail -1 | grep -o "[0-9]*$")
[ "$term_step" -gt "$usr1_step" ] || fail "SIGTERM did not checkpoint (last step $term_step, SIGUSR1's $usr1_step)"
gdlab_mpirun 180 "$np" "$gdlab" run "$dir/on_request.textproto" --out "$out" --resume --quiet \
  || fail "--resume after SIGTERM exited $?"
grep -q "task_000000: continues from its checkpoint at step $term_step" "$out.log" \
  || fail "the resumed run did not continue from the SIGTERM checkpoint (step $term_step)"
[ ! -e "$dir/term.h5.ckpt" ] || fail "checkpoints left behind after the resumed campaign completed"
"$python" "$check" "$dir/reference.h5" "$out" || fail "SIGUSR1 + SIGTERM + resume differs from the reference"
echo "on request: SIGUSR1 checkpoint at update $usr1_step, SIGTERM checkpoint at $term_step, exit 3, resumed: equal"

# ---- 1b. a damaged checkpoint (one payload byte flipped) is reported by name and ignored: the
# task starts from scratch, and the result is still the uninterrupted run's
out=$dir/damaged.h5 ckpt=$dir/damaged.h5.ckpt/task_000000.ckpt
timeout --signal=KILL 180 mpirun --oversubscribe -n "$np" "$gdlab" run "$dir/on_request.textproto" --out "$out" \
  --quiet 2>"$dir/damaged.err" &
launcher=$!
for _ in $(seq 1 100); do grep -q '"task_started", "task": "task_000000"' "$out.log" 2>/dev/null && break; sleep 0.05; done
sleep 1
kill -TERM "$(coordinator_pid "$out.log")"
rc=0; wait "$launcher" || rc=$?
[ "$rc" -eq 3 ] || fail "SIGTERM (damaged phase): expected exit 3, got $rc"
check_ckpt "$ckpt"
"$python" - "$ckpt" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[40] ^= 0xFF
open(sys.argv[1], "wb").write(bytes(data))
PY
gdlab_mpirun 180 "$np" "$gdlab" run "$dir/on_request.textproto" --out "$out" --resume --quiet \
  || fail "--resume with a damaged checkpoint exited $?"
grep -q "task_000000.ckpt.*task_000000 starts from scratch" "$out.log" \
  || fail "the damaged checkpoint was not reported: $(grep -i checkpoint "$out.log" | tail -3)"
"$python" "$check" "$dir/reference.h5" "$out" || fail "resume past a damaged checkpoint differs from the reference"
echo "damaged checkpoint: reported, ignored, task rerun from scratch: equal"

# ---- 2. SIGKILL every rank at 3 random instants, resuming after each. Each instant is a random
# 0-500 ms after the attempt's first new checkpoint (so every attempt makes progress and the kills
# land mid-run whatever the machine's speed).
out=$dir/killed.h5 mode=--force kills=0
for attempt in $(seq 1 12); do
  seen=$(checkpoints "$out.log")
  timeout --signal=KILL 180 mpirun --oversubscribe -n "$np" "$gdlab" run "$spec" --out "$out" $mode --quiet \
    2>"$dir/kill.err.$attempt" &
  launcher=$!
  if [ "$kills" -lt 3 ]; then
    for _ in $(seq 1 1200); do
      [ "$(checkpoints "$out.log")" -gt "$seen" ] && break
      kill -0 "$launcher" 2>/dev/null || break
      sleep 0.05
    done
    ms=$((RANDOM % 501))
    sleep "$(printf '0.%03d' "$ms")"
    if kill -0 "$launcher" 2>/dev/null; then
      mpirun_pid=$(pgrep -P "$launcher" -x mpirun || true)
      ranks=$([ -n "$mpirun_pid" ] && pgrep -P "$mpirun_pid" -x gdlab || true)
      # shellcheck disable=SC2086
      [ -n "$ranks" ] && kill -KILL $ranks 2>/dev/null || true
      wait "$launcher" || true
      kills=$((kills + 1))
      echo "kill $kills: ${ms} ms after a new checkpoint (checkpoints so far: $(checkpoints "$out.log"))"
      mode=--resume
      continue
    fi
  fi
  rc=0; wait "$launcher" || rc=$?
  [ "$rc" -eq 0 ] || fail "run $attempt ($mode) exited $rc: $(head -c 300 "$dir/kill.err.$attempt")"
  break
done
[ "$kills" -eq 3 ] || fail "only $kills kills dealt"
resumed=$(grep -c "continues from its checkpoint" "$out.log" || true)
[ "$resumed" -ge 1 ] || fail "no resume continued from a checkpoint"
"$python" "$check" "$dir/reference.h5" "$out" || fail "the file after 3 SIGKILLs differs from the reference"
secs=$("$python" -c "import sys,time; print(round(time.time()-float(sys.argv[1]),1))" "$start_s")
echo "ps_checkpoint_test: OK: SIGUSR1/SIGTERM checkpoints, 3 SIGKILLs ($resumed resumes from a checkpoint), equal to the uninterrupted run, ${secs} s"
