#!/usr/bin/env bash
# HDF5 file locking (issue 8 §5): while `gdlab run` writes its file with locking on, a second
# writer (h5py, mode r+) is refused with HDF5's "unable to lock file"; with
# HDF5_USE_FILE_LOCKING=FALSE a read-only open of the same file succeeds; and a spec with
# `store { locking: LOCKING_OFF }` runs to completion (the knob works).
source "$(dirname "$0")/lib.sh"
gdlab=$1 spec=$2 dir=$3 python=$4
rm -rf "$dir" && mkdir -p "$dir"
out=$dir/locked.h5

timeout --signal=KILL 120 mpirun --oversubscribe -n 3 "$gdlab" run "$spec" --out "$out" --quiet &
launcher=$!
for _ in $(seq 1 600); do
  grep -q '"event": "flush", "rows_total": [1-9]' "$out.log" 2>/dev/null && break
  sleep 0.05
done
grep -q '"event": "flush"' "$out.log" 2>/dev/null || fail "the run never flushed"

rc=0
"$python" -c "import h5py,sys; h5py.File(sys.argv[1], 'r+')" "$out" >"$dir/second_writer.txt" 2>&1 || rc=$?
kill -0 "$launcher" 2>/dev/null || fail "the run ended before the second writer tried (make the spec longer)"
[ "$rc" -ne 0 ] || fail "a second writer opened $out while gdlab was writing it"
grep -qi "unable to lock file" "$dir/second_writer.txt" ||
  fail "the second writer failed, but not with a locking error: $(tail -n 3 "$dir/second_writer.txt")"
echo "ok: second writer refused: $(grep -i -m1 'unable to lock file' "$dir/second_writer.txt" | sed 's/^ *//')"

HDF5_USE_FILE_LOCKING=FALSE "$python" -c "import h5py,sys; f=h5py.File(sys.argv[1], 'r'); print(sorted(f.keys()))" \
  "$out" >"$dir/reader.txt" 2>&1 || fail "with HDF5_USE_FILE_LOCKING=FALSE a read-only open failed: $(tail -n 3 "$dir/reader.txt")"
echo "ok: HDF5_USE_FILE_LOCKING=FALSE read-only open while writing: $(cat "$dir/reader.txt")"

wait "$launcher" || fail "the locked run exited $?"

# The knob: LOCKING_OFF runs and completes.
sed 's/store { flush_interval_s: 0.1 }/store { flush_interval_s: 0.1 locking: LOCKING_OFF }/' "$spec" > "$dir/off.textproto"
grep -q LOCKING_OFF "$dir/off.textproto" || fail "could not add locking: LOCKING_OFF to the spec"
gdlab_mpirun 120 3 "$gdlab" run "$dir/off.textproto" --out "$dir/unlocked.h5" --quiet || fail "the LOCKING_OFF run exited $?"
"$python" -c "import h5py,sys; f=h5py.File(sys.argv[1], 'r'); assert len(f['tasks']) == 30, len(f['tasks'])" \
  "$dir/unlocked.h5" || fail "the LOCKING_OFF file"
echo "lock_test: OK"
