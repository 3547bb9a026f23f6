#!/usr/bin/env bash
# Side-by-side GD throughput: the C++ core (bench/bench_gd.cc) against a plain numpy loop
# (bench/numpy_gd.py), both logistic loss, N = 40, d = 5. Builds nothing.
#
# Usage: bench/compare.sh [BENCH_BINARY]   (default build/bench/bench_gd)
# Environment: PYTHON (default /usr/bin/python3), NUMPY_STEPS (default 200000).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bench=${1:-build/bench/bench_gd}
python=${PYTHON:-/usr/bin/python3}
numpy_steps=${NUMPY_STEPS:-200000}

if [[ ! -x "$bench" ]]; then
  echo "compare.sh: benchmark binary '$bench' not found (build it: cmake --build build --target bench_gd)" >&2
  exit 2
fi

json=$(mktemp)
trap 'rm -f "$json"' EXIT
"$bench" --benchmark_out="$json" --benchmark_out_format=json >/dev/null
numpy_line=$("$python" "$here/numpy_gd.py" --steps="$numpy_steps")

"$python" - "$json" "$numpy_line" <<'PY'
import json
import sys

with open(sys.argv[1]) as f:
    report = json.load(f)
numpy_fields = dict(kv.split("=", 1) for kv in sys.argv[2].split()[1:])
numpy_rate = float(numpy_fields["steps_per_second"])

print(f"{'implementation':<28}{'GD steps/s':>14}{'vs numpy':>10}")
for b in report["benchmarks"]:
    rate = b["items_per_second"]
    print(f"{'C++ ' + b['name']:<28}{rate:>14.4g}{rate / numpy_rate:>9.1f}x")
print(f"{'numpy loop':<28}{numpy_rate:>14.4g}{1.0:>9.1f}x")
context = report.get("context", {})
print(f"(both rates from CPU time; {context.get('num_cpus', '?')} CPUs at "
      f"{context.get('mhz_per_cpu', '?')} MHz; numpy: {numpy_fields['steps']} steps in "
      f"{numpy_fields['seconds']} s CPU, {numpy_fields['wall_seconds']} s wall)")
PY
