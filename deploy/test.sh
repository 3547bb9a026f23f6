#!/usr/bin/env bash
# The README's test command: install, build, run every test with ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${GDLAB_BUILD_DIR:-$root/build}
bash "$root/deploy/build.sh"
cd "$build"
# Two cores: run two tests at a time; MPI tests oversubscribe and poll with backoff.
ctest --output-on-failure -j 2 "$@"
