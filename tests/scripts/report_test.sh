#!/usr/bin/env bash
# python3 -m analysis.report FILE --out DIR writes one figure per done task (Fig. 1 panels for
# separable_gd, a kind plugin's figure for the others) and a Markdown table.
# Usage: report_test.sh PYTHON SRC FILE DIR N_FIG1 N_TABLE_ROWS N_PLUGIN_FIGURES
source "$(dirname "$0")/lib.sh"
python=$1 src=$2 file=$3 dir=$4 want_fig1=$5 want_rows=$6 want_plugin=$7
rm -rf "$dir"
(cd "$src" && "$python" -m analysis.report "$file" --out "$dir") || fail "analysis.report exited $?"
n_png=$(find "$dir" -name 'task_*_fig1.png' | wc -l)
[ "$n_png" -eq "$want_fig1" ] || fail "expected $want_fig1 Fig. 1 figures, found $n_png"
n_plugin=$(find "$dir" -name 'task_*.png' ! -name 'task_*_fig1.png' | wc -l)
[ "$n_plugin" -eq "$want_plugin" ] || fail "expected $want_plugin kind-plugin task figures, found $n_plugin"
for f in "$dir"/*.png; do
  head -c 8 "$f" | od -An -c | grep -q 'P   N   G' || fail "$f is not a PNG"
done
[ -s "$dir/report.md" ] || fail "no report.md"
rows=$(grep -c '^| task_0000' "$dir/report.md" || true)
[ "$rows" -ge "$want_rows" ] || fail "expected at least $want_rows task rows in report.md, found $rows"
if grep -q "figure failed\|table failed\|not known to this report" "$dir/report.md"; then
  fail "report.md notes a failure: $(grep "figure failed\|table failed\|not known" "$dir/report.md")"
fi
echo "report_test: OK ($n_png Fig. 1 figures, $n_plugin plugin figures, $rows table rows)"
