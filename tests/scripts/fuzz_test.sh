#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/build.sh) and fuzzes each for a bounded time on the committed
# corpus (fuzz/run.sh). Any crash, sanitizer report, escaping exception (other than the expected
# InputError / TransportError), timeout (>5 s per input) or >2 GB input fails the test; the
# reproducing input is left in fuzz/crashes/. Usage: fuzz_test.sh REPO BUILD_DIR [SECONDS]
set -euo pipefail
repo=$1 build=$2 seconds=${3:-30}
if ! command -v clang++ >/dev/null 2>&1; then
  echo "FAIL: clang++ not found: the fuzz test needs clang and libclang-rt-14-dev (run deploy/install-deps.sh)" >&2
  exit 1
fi
bash "$repo/fuzz/build.sh" "$build" || { echo "FAIL: fuzz/build.sh failed" >&2; exit 1; }
for target in spec wire; do
  echo "== fuzzing $target for $seconds s"
  bash "$repo/fuzz/run.sh" "$target" "$seconds" "$build" || { echo "FAIL: the $target fuzzer found a bug (input in $repo/fuzz/crashes/)" >&2; exit 1; }
done
echo "fuzz_test: OK"
