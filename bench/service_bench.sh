#!/usr/bin/env bash
# Service benchmark: submit latency (round trip of a Submit on loopback, including parsing and
# validating the spec and creating the campaign's HDF5 file) and progress events per second
# delivered to 200 concurrent watchers of a 200-task campaign of tiny tasks (events as fast as the
# coordinator produces them).
# Usage: bench/service_bench.sh [BUILD_DIR]   (default build/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
dir=$(mktemp -d)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
timeout --signal=KILL 300 mpirun --oversubscribe -n 3 "$build/gdlab" serve --data "$dir/data" \
  --listen 127.0.0.1:0 --quiet &
launcher=$!
for _ in $(seq 1 200); do [ -s "$dir/data/pid" ] && break; sleep 0.05; done
server=$(cat "$dir/data/endpoint")
"$build/tests/service_probe" submit-latency "$server" "$dir/data/token" "$root/bench/service_tiny.textproto" 200
id=$(GDLAB_SERVER=$server "$build/gdlab" submit "$root/bench/service_burst.textproto" --token-file "$dir/data/token")
"$build/tests/service_probe" watchers "$server" "$id" 200
GDLAB_SERVER=$server "$build/gdlab" shutdown --token-file "$dir/data/token"
wait "$launcher"
rm -rf "$dir"
