#!/usr/bin/env bash
# The same spec under 2 and 4 ranks gives bitwise-identical observables, theory and parameters.
source "$(dirname "$0")/lib.sh"
gdlab=$1 spec=$2 dir=$3 python=$4 compare=$5
rm -rf "$dir" && mkdir -p "$dir"
gdlab_mpirun 120 2 "$gdlab" run "$spec" --out "$dir/np2.h5" --quiet || fail "np2 run exited $?"
gdlab_mpirun 120 4 "$gdlab" run "$spec" --out "$dir/np4.h5" --quiet || fail "np4 run exited $?"
"$python" "$compare" "$dir/np2.h5" "$dir/np4.h5" || fail "np2 and np4 files differ"
echo "bitwise_test: OK"
