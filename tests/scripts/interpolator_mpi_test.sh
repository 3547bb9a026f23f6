#!/usr/bin/env bash
# random_interpolator under real mpirun: the same spec run on 2, 3 and 5 ranks gives bitwise
# identical files (guesses are a pure function of (seed, task, stream, index) and units are
# merged in index order); the learning curve reads back with h5py; and a task split into units
# that is stopped by SIGTERM mid-run resumes from its atomic checkpoint to the same result as an
# uninterrupted run.
source "$(dirname "$0")/lib.sh"
gdlab=$1 spec=$2 long_spec=$3 dir=$4 python=$5 compare=$6 check=$7
rm -rf "$dir" && mkdir -p "$dir"

for np in 3 2 5; do
  gdlab_mpirun 300 "$np" "$gdlab" run "$spec" --out "$dir/np$np.h5" --quiet || fail "np=$np exited $?"
done
"$python" "$compare" "$dir/np3.h5" "$dir/np2.h5" || fail "np2 differs from np3"
"$python" "$compare" "$dir/np3.h5" "$dir/np5.h5" || fail "np5 differs from np3"
"$python" "$check" "$dir/np3.h5" 10 || fail "learning-curve readback failed"

# Checkpoint and resume: SIGTERM once a checkpoint exists.
gdlab_mpirun 300 3 "$gdlab" run "$long_spec" --out "$dir/long_reference.h5" --quiet || fail "long reference exited $?"
timeout --signal=KILL 300 mpirun --oversubscribe -n 3 "$gdlab" run "$long_spec" --out "$dir/long.h5" --quiet \
  2>"$dir/long.err" &
launcher=$!
ckpt=$dir/long.h5.ckpt/task_000000.ckpt
for _ in $(seq 1 200); do [ -e "$ckpt" ] && break; sleep 0.05; done
[ -e "$ckpt" ] || fail "no checkpoint appeared at $ckpt"
sleep 0.5
kill -0 "$launcher" 2>/dev/null || fail "the run ended before it could be interrupted"
coordinator=$("$python" -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['pid'])" "$dir/long.h5.log")
kill -TERM "$coordinator"  # what mpirun forwards; Slurm's time-limit warning does the same
rc=0; wait "$launcher" || rc=$?
[ "$rc" -eq 3 ] || fail "SIGTERM: expected exit 3, got $rc: $(head -c 300 "$dir/long.err")"
[ -e "$ckpt" ] || fail "the checkpoint is gone after the interruption"
"$python" - "$ckpt" <<'PY' || fail "the checkpoint is not a complete gdlab checkpoint"
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"GDLCKPT1", data[:8]
(length,) = struct.unpack("<Q", data[8:16])
assert length == len(data) - 24, (length, len(data))
print(f"checkpoint {sys.argv[1]}: {length} bytes of merged state")
PY
gdlab_mpirun 300 3 "$gdlab" run "$long_spec" --out "$dir/long.h5" --resume --quiet || fail "--resume exited $?"
grep -q "continues from its checkpoint" "$dir/long.h5.log" || fail "the resumed task did not start from its checkpoint"
"$python" "$compare" "$dir/long_reference.h5" "$dir/long.h5" || fail "resumed file differs from the uninterrupted run"
[ ! -e "$dir/long.h5.ckpt" ] || fail "checkpoints left behind after completion: $(ls "$dir/long.h5.ckpt")"
echo "PASS: np 2/3/5 bitwise identical, learning curve read back, SIGTERM + resume from checkpoint bitwise equal"
