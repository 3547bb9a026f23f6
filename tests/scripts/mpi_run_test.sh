#!/usr/bin/env bash
# mpirun -n 3 gdlab run SPEC --out OUT: exit 0, a complete file and its log.
source "$(dirname "$0")/lib.sh"
gdlab=$1 spec=$2 out=$3
rm -f "$out" "$out.log"
gdlab_mpirun 120 3 "$gdlab" run "$spec" --out "$out" --quiet || fail "gdlab run exited $?"
[ -s "$out" ] || fail "no output file $out"
grep -q '"event": "finish", "status": "complete"' "$out.log" || fail "log has no complete finish line"
echo "mpi_run_test: OK ($out)"
