#!/usr/bin/env bash
# Bad input through the CLI: each case prints one clear error naming the file, line and field,
# exits 2, and leaves no output file that looks like a run (an existing file is never touched).
source "$(dirname "$0")/lib.sh"
gdlab=$1 data=$2 dir=$3
rm -rf "$dir" && mkdir -p "$dir"
cd "$data"

# expect_error EXPECTED_SUBSTRING COMMAND...: exit code 2 and the substring on stderr.
expect_error() {
  local want=$1
  shift
  local rc=0
  "$@" >"$dir/stdout" 2>"$dir/stderr" || rc=$?
  [ "$rc" -eq 2 ] || fail "$* exited $rc, expected 2; stderr: $(cat "$dir/stderr")"
  grep -qF -- "$want" "$dir/stderr" || fail "$*: stderr lacks '$want': $(cat "$dir/stderr")"
  echo "ok: $* -> $(head -n 1 "$dir/stderr")"
}

expect_error 'bad/unknown_field.textproto:8:14: Message type "gdlab.pb.SeparableGdSpec" has no field named "step_size"' \
  "$gdlab" validate bad/unknown_field.textproto
expect_error "bad/wrong_type.textproto:8:12: Expected integer, got: \"ten\" (in field 'steps')" \
  "$gdlab" validate bad/wrong_type.textproto
expect_error 'bad/negative_lr.textproto:8:5: experiments[0].separable_gd.lr: must be a finite number > 0 (got -0.5)' \
  "$gdlab" validate bad/negative_lr.textproto
expect_error 'bad/zero_lr_sweep.textproto:5:3: experiments[0].sweep[0]: must be a finite number > 0 (got 0)' \
  "$gdlab" validate bad/zero_lr_sweep.textproto
expect_error 'bad/large_step.textproto:7:5: experiments[0].separable_gd.lr: step size eta=' \
  "$gdlab" validate bad/large_step.textproto
expect_error 'bad/empty_dataset.textproto:9:21: experiments[0].separable_gd.dataset.csv.path:' \
  "$gdlab" validate bad/empty_dataset.textproto
expect_error 'not linearly separable' "$gdlab" validate bad/non_separable.textproto
expect_error 'bad/non_separable.textproto:9:5: experiments[0].separable_gd.dataset:' \
  "$gdlab" validate bad/non_separable.textproto
expect_error 'missing.csv' "$gdlab" validate bad/missing_csv.textproto
expect_error 'bad/missing_csv.textproto:9:21: experiments[0].separable_gd.dataset.csv.path:' \
  "$gdlab" validate bad/missing_csv.textproto
expect_error 'nope.textproto: cannot read the spec file' "$gdlab" validate nope.textproto
expect_error "unknown command 'frobnicate'" "$gdlab" frobnicate

# Under mpirun: the same errors, exit 2, and no output file.
expect_error 'experiments[0].separable_gd.lr: must be a finite number > 0' \
  gdlab_mpirun 60 2 "$gdlab" run bad/negative_lr.textproto --out "$dir/neg.h5"
[ ! -e "$dir/neg.h5" ] || fail "a bad spec left an output file"
expect_error 'directory /nonexistent/dir does not exist' \
  gdlab_mpirun 60 2 "$gdlab" run good_csv.textproto --out /nonexistent/dir/out.h5
expect_error 'missing --out' gdlab_mpirun 60 2 "$gdlab" run good_csv.textproto
expect_error 'needs at least 2 MPI ranks' gdlab_mpirun 60 1 "$gdlab" run good_csv.textproto --out "$dir/one.h5"
[ ! -e "$dir/one.h5" ] || fail "a 1-rank run left an output file"

# An existing output file is never touched without --force.
gdlab_mpirun 60 2 "$gdlab" run good_csv.textproto --out "$dir/good.h5" --quiet || fail "good run exited $?"
before=$(md5sum < "$dir/good.h5")
expect_error 'output file exists' gdlab_mpirun 60 2 "$gdlab" run good_csv.textproto --out "$dir/good.h5"
[ "$(md5sum < "$dir/good.h5")" = "$before" ] || fail "the existing output file was modified"
gdlab_mpirun 60 2 "$gdlab" run good_csv.textproto --out "$dir/good.h5" --force --quiet || fail "--force run exited $?"
echo "bad_input_test: OK"
