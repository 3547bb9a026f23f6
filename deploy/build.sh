#!/usr/bin/env bash
# Installs the Debian packages (deploy/install-deps.sh) and builds gdlab into build/ (or $GDLAB_BUILD_DIR).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${GDLAB_BUILD_DIR:-$root/build}
bash "$root/deploy/install-deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$(nproc)"
