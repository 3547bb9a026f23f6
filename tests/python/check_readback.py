#!/usr/bin/python3
"""Validate a gdlab campaign HDF5 file against the layout of docs/hdf5-layout.md.

Usage:
    check_readback.py FILE.h5 [--expect-tasks N] [--expect-status complete]
                              [--expect-done N] [--expect-failed N] [--strict-storage]

Checks the H5MD header (/h5md version [1, 1], author, creator "gdlab", modules/gdlab), the campaign
parameters (attributes, non-empty spec_text, one task line per task group), every /tasks/<name> group
(attributes and their types, config string, kind-specific attributes and parameters for separable_gd)
and every time series under observables/ and theory/ (step int64 strictly increasing, time float64,
value float64, equal first dimensions; finite and non-empty for done tasks). --strict-storage also
requires every series dataset to be chunked with gzip and shuffle.

Prints "check_readback: OK ..." and exits 0, or lists every violation and exits 1. Needs only
/usr/bin/python3 with python3-h5py and python3-numpy.
"""

import argparse
import datetime
import re
import sys

import h5py
import numpy as np

CAMPAIGN_STATUSES = ("running", "complete", "failed", "cancelled", "drained", "interrupted")
TASK_STATUSES = ("pending", "running", "done", "failed", "cancelled")
SEPARABLE_GD = "separable_gd"
SEP_OBSERVABLES = ("w", "norm", "loss", "loss_ratio", "normalized_margin", "margin_gap", "angle_gap",
                   "direction_error", "residual")
SEP_THEORY = ("norm", "loss", "loss_ratio", "normalized_margin", "margin_gap", "angle_gap",
              "direction_error")
SEP_PARAMETERS = ("X", "y", "w_hat", "w_tilde", "alpha", "support", "sigma_max")
MAX_LISTED = 60


class Checker:
    def __init__(self):
        self.errors = []

    def fail(self, where, msg):
        self.errors.append(f"{where}: {msg}")

    # ---- attributes --------------------------------------------------------------------------

    def attr(self, obj, name, kind, where=None, required=True):
        """Checks attribute `name` of `obj`; kind is "str", "int64", "uint64", "float64" or "int32[2]".
        Returns its value (str for strings) or None."""
        where = where or obj.name
        if name not in obj.attrs:
            if required:
                self.fail(where, f"missing attribute '{name}'")
            return None
        aid = obj.attrs.get_id(name)
        dtype, shape = aid.dtype, aid.shape
        value = obj.attrs[name]
        if kind == "str":
            info = h5py.check_string_dtype(dtype)
            if info is None:
                self.fail(where, f"attribute '{name}' is not a string (dtype {dtype})")
                return None
            if info.length is not None or info.encoding != "utf-8":
                self.fail(where, f"attribute '{name}' must be a variable-length UTF-8 string "
                                 f"(found {'fixed length %d' % info.length if info.length else 'variable length'}, "
                                 f"{info.encoding})")
            if shape != ():
                self.fail(where, f"attribute '{name}' must be scalar (shape {shape})")
                return None
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        if kind == "int32[2]":
            if dtype != np.dtype("int32") or shape != (2,):
                self.fail(where, f"attribute '{name}' must be int32[2] (found {dtype} shape {shape})")
                return None
            return np.asarray(value)
        if dtype != np.dtype(kind):
            self.fail(where, f"attribute '{name}' must be {kind} (found {dtype})")
            return None
        if shape != ():
            self.fail(where, f"attribute '{name}' must be scalar (shape {shape})")
            return None
        return value.item() if hasattr(value, "item") else value

    # ---- datasets ----------------------------------------------------------------------------

    def string_dataset(self, parent, name, ndim, nonempty=True):
        where = f"{parent.name.rstrip('/')}/{name}"
        if name not in parent:
            self.fail(where, "missing string dataset")
            return None
        ds = parent[name]
        if not isinstance(ds, h5py.Dataset):
            self.fail(where, "must be a dataset")
            return None
        if h5py.check_string_dtype(ds.dtype) is None:
            self.fail(where, f"must be a string dataset (dtype {ds.dtype})")
            return None
        if len(ds.shape) != ndim:
            self.fail(where, f"must be {'scalar' if ndim == 0 else '%d-D' % ndim} (shape {ds.shape})")
            return None
        value = ds.asstr()[()]
        if nonempty:
            if ndim == 0 and not str(value).strip():
                self.fail(where, "is empty")
        return value

    def series(self, grp, done, storage):
        """Checks one observables/theory series; returns its length or None."""
        where = grp.name
        parts = {}
        for key in ("step", "time", "value"):
            if key not in grp or not isinstance(grp[key], h5py.Dataset):
                self.fail(where, f"missing dataset '{key}'")
                continue
            parts[key] = grp[key]
        if len(parts) != 3:
            return None
        step, time, value = parts["step"], parts["time"], parts["value"]
        ok = True
        if step.dtype != np.dtype("int64") or step.ndim != 1:
            self.fail(f"{where}/step", f"must be 1-D int64 (found {step.dtype} shape {step.shape})")
            ok = False
        if time.dtype != np.dtype("float64") or time.ndim != 1:
            self.fail(f"{where}/time", f"must be 1-D float64 (found {time.dtype} shape {time.shape})")
            ok = False
        if value.dtype != np.dtype("float64") or value.ndim < 1:
            self.fail(f"{where}/value", f"must be float64 with time as first dimension "
                                        f"(found {value.dtype} shape {value.shape})")
            ok = False
        if not ok:
            return None
        n = value.shape[0]
        if step.shape[0] != n or time.shape[0] != n:
            self.fail(where, f"first dimensions differ: step {step.shape[0]}, time {time.shape[0]}, "
                             f"value {n}")
            return None
        steps = step[()]
        if n > 1:
            bad = np.nonzero(np.diff(steps) <= 0)[0]
            if bad.size:
                i = int(bad[0])
                self.fail(f"{where}/step", f"not strictly increasing: step[{i}] = {steps[i]}, "
                                           f"step[{i + 1}] = {steps[i + 1]}")
        if done:
            if n == 0:
                self.fail(where, "empty series in a done task")
            for key, ds in (("time", time), ("value", value)):
                arr = ds[()]
                if not np.all(np.isfinite(arr)):
                    idx = np.argwhere(~np.isfinite(arr))[0]
                    self.fail(f"{where}/{key}", f"non-finite value {arr[tuple(idx)]} at index "
                                                f"{tuple(int(i) for i in idx)} in a done task")
        if storage:
            for key, ds in parts.items():
                if ds.chunks is None or ds.compression != "gzip" or not ds.shuffle:
                    self.fail(f"{where}/{key}", f"must be chunked with gzip and shuffle (chunks "
                                                f"{ds.chunks}, compression {ds.compression}, "
                                                f"shuffle {ds.shuffle})")
        return n

    def float_parameter(self, params, name, shape_ok, what):
        where = f"{params.name}/{name}"
        if name not in params:
            self.fail(where, "missing parameter dataset")
            return None
        ds = params[name]
        if not isinstance(ds, h5py.Dataset) or ds.dtype != np.dtype("float64"):
            self.fail(where, f"must be a float64 dataset (found {getattr(ds, 'dtype', 'a group')})")
            return None
        if not shape_ok(ds.shape):
            self.fail(where, f"shape {ds.shape} is not {what}")
            return None
        arr = ds[()]
        if not np.all(np.isfinite(arr)):
            self.fail(where, "contains non-finite values")
        return np.asarray(arr)


def check_header(c, f):
    status = c.attr(f, "gdlab_status", "str", "/")
    if status is not None and status not in CAMPAIGN_STATUSES:
        c.fail("/", f"gdlab_status '{status}' not one of {CAMPAIGN_STATUSES}")
    c.attr(f, "gdlab_version", "str", "/")
    created = c.attr(f, "created", "str", "/")
    if created is not None:
        try:
            datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            c.fail("/", f"created '{created}' is not an ISO 8601 date-time")
    if "h5md" not in f:
        c.fail("/h5md", "missing group")
    else:
        h = f["h5md"]
        version = c.attr(h, "version", "int32[2]")
        if version is not None and list(version) != [1, 1]:
            c.fail("/h5md", f"version must be [1, 1] (found {list(version)})")
        for sub, attrs in (("author", ("name",)), ("creator", ("name", "version")),
                           ("modules/gdlab", ("version",))):
            if sub not in h:
                c.fail(f"/h5md/{sub}", "missing group")
                continue
            vals = {a: c.attr(h[sub], a, "str") for a in attrs}
            if sub == "creator" and vals.get("name") is not None and vals["name"] != "gdlab":
                c.fail("/h5md/creator", f"name must be 'gdlab' (found '{vals['name']}')")
    return status


def check_parameters(c, f):
    if "parameters" not in f:
        c.fail("/parameters", "missing group")
        return None
    p = f["parameters"]
    c.attr(p, "campaign_name", "str")
    c.attr(p, "campaign_seed", "uint64")
    c.attr(p, "schema_version", "int64")
    c.attr(p, "spec_file", "str")
    c.string_dataset(p, "spec_text", 0)
    lines = c.string_dataset(p, "tasks", 1, nonempty=False)
    return None if lines is None else len(lines)


def check_task(c, name, g, storage):
    where = g.name
    tid = c.attr(g, "task_id", "int64")
    m = re.fullmatch(r"task_(\d+)", name)
    if not m:
        c.fail(where, "task group name must be task_<digits>")
    elif tid is not None and int(m.group(1)) != tid:
        c.fail(where, f"task_id {tid} does not match the group name")
    kind = c.attr(g, "kind", "str")
    c.attr(g, "experiment", "str")
    c.attr(g, "experiment_index", "int64")
    c.attr(g, "sweep_point", "str")
    c.attr(g, "seed", "uint64")
    status = c.attr(g, "status", "str")
    if status is not None and status not in TASK_STATUSES:
        c.fail(where, f"status '{status}' not one of {TASK_STATUSES}")
    error = c.attr(g, "error", "str")
    if error is not None and status == "failed" and not error.strip():
        c.fail(where, "failed task with an empty error attribute")
    if error and status in ("pending", "running", "done", "cancelled"):
        c.fail(where, f"error must be empty unless failed (status {status}, error '{error}')")
    c.string_dataset(g, "config", 0)
    done = status == "done"

    series = {}
    for which in ("observables", "theory"):
        if which not in g:
            continue
        grp = g[which]
        if not isinstance(grp, h5py.Group):
            c.fail(f"{where}/{which}", "must be a group")
            continue
        for sname, sgrp in grp.items():
            if not isinstance(sgrp, h5py.Group):
                c.fail(sgrp.name, "must be a step/time/value group")
                continue
            series[(which, sname)] = (c.series(sgrp, done, storage), sgrp)

    if kind == SEPARABLE_GD:
        req = done
        verdict = c.attr(g, "verdict", "str", required=req)
        if verdict is not None and verdict not in ("pass", "fail"):
            c.fail(where, f"verdict '{verdict}' not pass/fail")
        c.attr(g, "verdict_detail", "str", required=req)
        loss = c.attr(g, "loss", "str", required=req)
        if loss is not None and loss not in ("logistic", "exponential"):
            c.fail(where, f"loss '{loss}' not logistic/exponential")
        lr = c.attr(g, "lr", "float64", required=req)
        mom = c.attr(g, "momentum", "float64", required=req)
        eta = c.attr(g, "eta_eff", "float64", required=req)
        if None not in (lr, mom, eta) and mom < 1 and not np.isclose(eta, lr / (1 - mom), rtol=1e-9):
            c.fail(where, f"eta_eff {eta} != lr/(1-momentum) = {lr / (1 - mom)}")
        if done:
            check_separable_done(c, g, series)
    return status, sum(n for n, _ in series.values() if n), len(series)


def check_separable_done(c, g, series):
    where = g.name
    for which, names in (("observables", SEP_OBSERVABLES), ("theory", SEP_THEORY)):
        for n in names:
            if (which, n) not in series:
                c.fail(f"{where}/{which}/{n}", "missing series (required for a done separable_gd task)")
    if "parameters" not in g:
        c.fail(f"{where}/parameters", "missing group")
        return
    p = g["parameters"]
    X = c.float_parameter(p, "X", lambda s: len(s) == 2 and s[0] > 0 and s[1] > 0, "[N][d]")
    if X is None:
        for n in SEP_PARAMETERS[1:]:
            if n not in p:
                c.fail(f"{p.name}/{n}", "missing parameter dataset")
        return
    N, d = X.shape
    y = c.float_parameter(p, "y", lambda s: s == (N,), f"[{N}]")
    if y is not None and not np.all(np.abs(y) == 1):
        c.fail(f"{p.name}/y", "labels must be +1 or -1")
    c.float_parameter(p, "w_hat", lambda s: s == (d,), f"[{d}]")
    c.float_parameter(p, "w_tilde", lambda s: s == (d,), f"[{d}]")
    c.float_parameter(p, "alpha", lambda s: s == (N,), f"[{N}]")
    sup = c.float_parameter(p, "support", lambda s: len(s) == 1 and 0 < s[0] <= N, f"[|S|] with 1 <= |S| <= {N}")
    if sup is not None and not (np.all(sup == np.round(sup)) and np.all((sup >= 0) & (sup < N))):
        c.fail(f"{p.name}/support", f"indices must be integers in [0, {N})")
    c.float_parameter(p, "sigma_max", lambda s: s in ((), (1,)), "scalar or [1]")
    w = series.get(("observables", "w"))
    if w is not None and w[0] is not None:
        shape = w[1]["value"].shape
        if len(shape) != 2 or shape[1] != d:
            c.fail(f"{where}/observables/w/value", f"shape {shape} is not [T][{d}]")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Validate the layout of a gdlab campaign HDF5 file.")
    ap.add_argument("file")
    ap.add_argument("--expect-tasks", type=int, help="number of task groups")
    ap.add_argument("--expect-status", choices=CAMPAIGN_STATUSES, help="root gdlab_status")
    ap.add_argument("--expect-done", type=int, help="number of tasks with status done")
    ap.add_argument("--expect-failed", type=int, help="number of tasks with status failed")
    ap.add_argument("--expect-some-cancelled", action="store_true",
                    help="at least one task has status cancelled")
    ap.add_argument("--strict-storage", action="store_true",
                    help="also require chunked + gzip + shuffle series datasets")
    args = ap.parse_args(argv)

    open_note = ""
    try:
        f = h5py.File(args.file, "r")
    except (OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        try:
            # A file left by a crashed SWMR writer keeps its "open for write" flag; SWMR read opens it.
            f = h5py.File(args.file, "r", swmr=True)
            open_note = f" (opened in SWMR read mode; plain open failed: {first})"
        except (OSError, ValueError):
            print(f"check_readback: FAIL {args.file}: cannot open: {first}", file=sys.stderr)
            return 1

    c = Checker()
    counts = {s: 0 for s in TASK_STATUSES}
    n_tasks = n_series = n_rows = 0
    try:
        with f:
            status = check_header(c, f)
            n_lines = check_parameters(c, f)
            if "tasks" not in f or not isinstance(f["tasks"], h5py.Group):
                c.fail("/tasks", "missing group")
            else:
                ids = {}
                for name, g in f["tasks"].items():
                    if not isinstance(g, h5py.Group):
                        c.fail(f"/tasks/{name}", "must be a group")
                        continue
                    n_tasks += 1
                    tstatus, rows, nser = check_task(c, name, g, args.strict_storage)
                    if tstatus in counts:
                        counts[tstatus] += 1
                    n_rows += rows
                    n_series += nser
                    tid = g.attrs.get("task_id")
                    if tid is not None:
                        ids.setdefault(int(np.asarray(tid).reshape(-1)[0]), []).append(name)
                for tid, names in ids.items():
                    if len(names) > 1:
                        c.fail("/tasks", f"task_id {tid} used by {', '.join(names)}")
                if n_lines is not None and n_lines != n_tasks:
                    c.fail("/parameters/tasks", f"{n_lines} task lines but {n_tasks} task groups")
    except (OSError, KeyError, ValueError, TypeError) as exc:
        c.fail(args.file, f"read error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        status = None

    if args.expect_tasks is not None and n_tasks != args.expect_tasks:
        c.fail("expect", f"{n_tasks} task groups, expected {args.expect_tasks}")
    if args.expect_status is not None and status != args.expect_status:
        c.fail("expect", f"gdlab_status '{status}', expected '{args.expect_status}'")
    if args.expect_done is not None and counts["done"] != args.expect_done:
        c.fail("expect", f"{counts['done']} done tasks, expected {args.expect_done}")
    if args.expect_failed is not None and counts["failed"] != args.expect_failed:
        c.fail("expect", f"{counts['failed']} failed tasks, expected {args.expect_failed}")
    if args.expect_some_cancelled and counts["cancelled"] == 0:
        c.fail("expect", "no cancelled task, expected at least one")

    if c.errors:
        print(f"check_readback: FAIL {args.file}: {len(c.errors)} violation(s)", file=sys.stderr)
        for e in c.errors[:MAX_LISTED]:
            print(f"  {e}", file=sys.stderr)
        if len(c.errors) > MAX_LISTED:
            print(f"  ... and {len(c.errors) - MAX_LISTED} more", file=sys.stderr)
        return 1
    by_status = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    print(f"check_readback: OK {args.file}{open_note}: gdlab_status {status}, {n_tasks} tasks"
          f" ({by_status or 'none'}), {n_series} series, {n_rows} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
