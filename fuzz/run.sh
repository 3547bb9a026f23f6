#!/usr/bin/env bash
# Bounded libFuzzer run on the committed corpus: fuzz/run.sh TARGET SECONDS [BUILD_DIR]
# TARGET is spec or wire. The corpus is copied to a temporary directory (the repository is not
# modified); crash/timeout/oom inputs are written to fuzz/crashes/ (not committed).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: fuzz/run.sh spec|wire SECONDS [BUILD_DIR]} seconds=${2:?seconds}
build=${3:-$repo/build-fuzz/libfuzzer}
bin=$build/${target}_fuzz
[ -x "$bin" ] || { echo "fuzz/run.sh: $bin not built; run fuzz/build.sh $build" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$repo/fuzz/corpus/$target" "$work/corpus"
mkdir -p "$repo/fuzz/crashes"
export GDLAB_FUZZ_SPEC_DIR=$repo/tests/data
rc=0
"$bin" "$work/corpus" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$repo/fuzz/crashes/${target}-" >"$work/log" 2>&1 || rc=$?
grep -v -E '^#[0-9]+.*(NEW|REDUCE|pulse)|Uses: |NEW_FUNC|libprotobuf ERROR' "$work/log" | tail -n 40
exit "$rc"
