#!/usr/bin/env bash
# python3 -m analysis.report FILE --out DIR writes one figure per task and a Markdown table.
source "$(dirname "$0")/lib.sh"
python=$1 src=$2 file=$3 dir=$4
rm -rf "$dir"
(cd "$src" && "$python" -m analysis.report "$file" --out "$dir") || fail "analysis.report exited $?"
n_png=$(find "$dir" -name 'task_*_fig1.png' | wc -l)
[ "$n_png" -eq 7 ] || fail "expected 7 task figures, found $n_png"
for f in "$dir"/task_*_fig1.png; do
  head -c 8 "$f" | od -An -c | grep -q 'P   N   G' || fail "$f is not a PNG"
done
[ -s "$dir/report.md" ] || fail "no report.md"
rows=$(grep -c '^| task_0000' "$dir/report.md" || true)
[ "$rows" -eq 7 ] || fail "expected 7 task rows in report.md, found $rows"
echo "report_test: OK ($n_png figures, $rows table rows)"
