#!/usr/bin/env bash
# Side-by-side guess-and-check throughput on the headline problem of issue 3 §3 (d = 8, ternary
# student, majority-of-3 teacher): the fast C++ kernel (bench/bench_interpolator.cc) against the
# batched PyTorch guess-and-check on this CPU (bench/gc_torch.py), with the H200 figures of the issue
# for reference. Builds nothing.
#
# Usage: bench/gc_compare.sh [BENCH_BINARY]   (default build/bench/bench_interpolator)
# Environment: PYTHON (default /usr/bin/python3), TORCH_SECONDS (default 3), REPETITIONS (default 3:
#              each C++ benchmark is run that many times and the best rate is shown; the machine is
#              shared, so the best run is the least disturbed one).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bench=${1:-build/bench/bench_interpolator}
python=${PYTHON:-/usr/bin/python3}
torch_seconds=${TORCH_SECONDS:-3}
repetitions=${REPETITIONS:-3}

if [[ ! -x "$bench" ]]; then
  echo "gc_compare.sh: benchmark binary '$bench' not found (build it: cmake -S . -B build -DGDLAB_BUILD_BENCH=ON && cmake --build build --target bench_interpolator)" >&2
  exit 2
fi

json=$(mktemp)
torch_out=$(mktemp)
trap 'rm -f "$json" "$torch_out"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"$bench" --benchmark_filter='BM_(Kernel|EndToEnd|EndToEndPortable|QuantizedSampler)/(1/16|4/32)$|BM_EndToEndThreads/(1/16|4/32)/' \
  --benchmark_repetitions="$repetitions" --benchmark_out="$json" --benchmark_out_format=json >/dev/null 2>&1
load_mid=$(cut -d' ' -f1-3 /proc/loadavg)
"$python" "$here/gc_torch.py" --seconds "$torch_seconds" --threads 1 --dtypes float32,bfloat16 >"$torch_out"
"$python" "$here/gc_torch.py" --seconds "$torch_seconds" --threads 2 --dtypes float32,bfloat16 >>"$torch_out"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$python" - "$json" "$torch_out" "$load_before" "$load_mid" "$load_after" <<'PY'
import json
import re
import sys

with open(sys.argv[1]) as f:
    report = json.load(f)
best = {}
cores = {}  # threaded rows: process CPU time / wall time of the best repetition
for b in report["benchmarks"]:
    if b.get("run_type") == "aggregate":
        continue
    name = b.get("run_name", b["name"])
    if b["items_per_second"] > best.get(name, 0.0):
        best[name] = b["items_per_second"]
        if "cores_used" in b:
            cores[name] = b["cores_used"]

torch_rates = {}
for line in open(sys.argv[2]):
    fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    if "guesses_per_second" in fields:
        key = (int(fields["width"]), int(fields["n"]), fields["dtype"], int(fields["threads"]))
        torch_rates[key] = float(fields["guesses_per_second"])

h200 = {(1, 16): 5.9e8, (4, 32): 2.7e8}  # issue 3 §3: PyTorch, fp16, one H200


def cxx(prefix, width, n, suffix=""):
    for name, rate in best.items():
        if re.fullmatch(rf"{prefix}/{width}/{n}{suffix}(/.*)?", name):
            return rate
    return float("nan")


def cores_used(width, n, threads):
    for name, used in cores.items():
        if re.fullmatch(rf"BM_EndToEndThreads/{width}/{n}/{threads}(/.*)?", name):
            return f" (cores used {used:.2f})"
    return ""


rows = []
for width, n in [(1, 16), (4, 32)]:
    rows.append((f"C++ kernel only, 1 thread", width, n, cxx("BM_Kernel", width, n)))
    rows.append((f"C++ end to end, 1 thread", width, n, cxx("BM_EndToEnd", width, n)))
    rows.append((f"C++ end to end, portable path", width, n, cxx("BM_EndToEndPortable", width, n)))
    rows.append((f"C++ service sampler run_block, 1 thread", width, n, cxx("BM_QuantizedSampler", width, n)))
    rows.append((f"C++ end to end, 1 thread (wall)", width, n, cxx("BM_EndToEndThreads", width, n, "/1"),
                 cores_used(width, n, 1)))
    rows.append((f"C++ end to end, 2 threads (wall)", width, n, cxx("BM_EndToEndThreads", width, n, "/2"),
                 cores_used(width, n, 2)))
    for threads in (1, 2):
        for dtype in ("float32", "bfloat16"):
            rate = torch_rates.get((width, n, dtype, threads), float("nan"))
            rows.append((f"PyTorch CPU {dtype}, {threads} thread{'s' if threads > 1 else ''}", width, n, rate))
    rows.append(("PyTorch H200 fp16 (issue 3 §3)", width, n, h200[(width, n)]))

print(f"{'implementation':<38}{'config':>12}{'guesses/s':>12}{'vs H200':>9}")
for label, width, n, rate, *note in rows:
    print(f"{label:<38}{f'k={width} N={n}':>12}{rate:>12.3g}{rate / h200[(width, n)]:>8.2f}x{''.join(note)}")
context = report.get("context", {})
print(f"(C++: best of the repetitions, CPU time for 1 thread, wall time for 2 threads; "
      f"{context.get('num_cpus', '?')} CPUs at {context.get('mhz_per_cpu', '?')} MHz; "
      f"load average before / between / after: {sys.argv[3]} / {sys.argv[4]} / {sys.argv[5]})")
PY
