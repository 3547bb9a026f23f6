#!/usr/bin/python3
"""Check a gdlab campaign file left by a run killed with SIGKILL.

Usage:
    check_crash_file.py FILE.h5 [--log FILE.h5.log] [--allow-no-flush]

1. The file must open with h5py (a plain read-only open; if that fails, an SWMR read open, which is
   what a file left by a crashed SWMR writer needs; the fallback is reported).
2. The last line of the JSON-lines sidecar FILE.h5.log with "event": "flush" gives rows_total, the
   number of rows the writer had flushed. The rows now in the file (the first dimension summed over
   every dataset named `value` under /tasks/*/observables/* and /tasks/*/theory/*) must be at least
   that: nothing that was flushed may be lost. A truncated last log line (the kill can cut it) is
   ignored. Without any flush line the check fails, unless --allow-no-flush.
3. Every task whose status is "done" must have all its series complete: step, time and value present,
   non-empty, of equal length and finite (and, for separable_gd, every series the kind writes).

Prints "check_crash_file: OK ..." and exits 0, or prints each violation and exits 1.
"""

import argparse
import json
import os
import sys

import h5py
import numpy as np

SERIES_GROUPS = ("observables", "theory")
REQUIRED = {
    "separable_gd": {
        "observables": ("w", "norm", "loss", "loss_ratio", "normalized_margin", "margin_gap", "angle_gap",
                        "direction_error", "residual"),
        "theory": ("norm", "loss", "loss_ratio", "normalized_margin", "margin_gap", "angle_gap",
                   "direction_error"),
    },
}


def as_str(v):
    if isinstance(v, (bytes, np.bytes_)):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.size == 1:
        return as_str(v.reshape(-1)[0])
    return str(v)


def last_flush(log_path):
    """(rows_total of the last flush line or None, flush count, malformed line numbers, line count)."""
    rows, count, bad, lineno = None, 0, [], 0
    with open(log_path, "r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                bad.append(lineno)
                continue
            if isinstance(rec, dict) and rec.get("event") == "flush":
                rt = rec.get("rows_total")
                if isinstance(rt, int) and not isinstance(rt, bool) and rt >= 0:
                    rows, count = rt, count + 1
                else:
                    bad.append(lineno)
    return rows, count, bad, lineno


def open_file(path):
    try:
        return h5py.File(path, "r"), ""
    except OSError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        return h5py.File(path, "r", swmr=True), f" (opened in SWMR read mode; plain open failed: {first})"
    except OSError:
        raise OSError(first) from None


def main(argv=None):
    ap = argparse.ArgumentParser(description="Check a gdlab campaign file left by a SIGKILLed run.")
    ap.add_argument("file")
    ap.add_argument("--log", help="JSON-lines sidecar (default FILE.h5.log)")
    ap.add_argument("--allow-no-flush", action="store_true",
                    help="pass when the log has no flush line (nothing was promised)")
    args = ap.parse_args(argv)
    log_path = args.log or args.file + ".log"
    errors = []

    try:
        f, open_note = open_file(args.file)
    except OSError as exc:
        print(f"check_crash_file: FAIL {args.file}: h5py cannot open it: {exc}", file=sys.stderr)
        return 1

    if not os.path.isfile(log_path):
        f.close()
        print(f"check_crash_file: FAIL {args.file}: no log sidecar {log_path}", file=sys.stderr)
        return 1
    flushed, n_flush, bad_lines, n_lines = last_flush(log_path)

    rows = 0
    n_series = n_done = 0
    counts = {}
    with f:
        status = as_str(f.attrs["gdlab_status"]) if "gdlab_status" in f.attrs else "(missing)"
        tasks = f["tasks"] if "tasks" in f and isinstance(f["tasks"], h5py.Group) else None
        if tasks is None:
            errors.append("/tasks: missing group")
        for name, g in (tasks.items() if tasks is not None else []):
            if not isinstance(g, h5py.Group):
                continue
            tstatus = as_str(g.attrs["status"]) if "status" in g.attrs else "(missing)"
            kind = as_str(g.attrs["kind"]) if "kind" in g.attrs else ""
            counts[tstatus] = counts.get(tstatus, 0) + 1
            done = tstatus == "done"
            n_done += done
            present = set()
            for which in SERIES_GROUPS:
                if which not in g:
                    continue
                for sname, sg in g[which].items():
                    where = f"{sg.name}"
                    if not isinstance(sg, h5py.Group):
                        continue
                    if "value" in sg and isinstance(sg["value"], h5py.Dataset):
                        v = sg["value"]
                        rows += v.shape[0] if v.ndim else 0
                        n_series += 1
                    present.add((which, sname))
                    if not done:
                        continue
                    missing = [k for k in ("step", "time", "value") if k not in sg]
                    if missing:
                        errors.append(f"{where}: done task series lacks {', '.join(missing)}")
                        continue
                    lens = {k: (sg[k].shape[0] if sg[k].ndim else 0) for k in ("step", "time", "value")}
                    if lens["value"] == 0:
                        errors.append(f"{where}: empty series in a done task")
                    if len(set(lens.values())) != 1:
                        errors.append(f"{where}: step/time/value lengths differ in a done task: {lens}")
                    for k in ("time", "value"):
                        try:
                            arr = sg[k][()]
                        except OSError as exc:
                            errors.append(f"{where}/{k}: unreadable: {exc}")
                            continue
                        if not np.all(np.isfinite(arr)):
                            errors.append(f"{where}/{k}: non-finite values in a done task")
            if done:
                for which, names in REQUIRED.get(kind, {}).items():
                    for sname in names:
                        if (which, sname) not in present:
                            errors.append(f"{g.name}/{which}/{sname}: missing in a done {kind} task")
                if not present and kind in REQUIRED:
                    errors.append(f"{g.name}: done task without any series")

    if flushed is None:
        if not args.allow_no_flush:
            errors.append(f"{log_path}: no valid \"flush\" line (use --allow-no-flush if none was expected)")
    elif rows < flushed:
        errors.append(f"rows in file {rows} < rows_total {flushed} of the last flush line: flushed data lost")
    # A SIGKILL can cut only the last line; a malformed line elsewhere means a broken writer.
    early_bad = [n for n in bad_lines if n != n_lines]
    if early_bad:
        errors.append(f"{log_path}: malformed lines before the last one: {early_bad[:10]}")

    if errors:
        print(f"check_crash_file: FAIL {args.file}: {len(errors)} violation(s)", file=sys.stderr)
        for e in errors[:60]:
            print(f"  {e}", file=sys.stderr)
        return 1
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    flush_txt = (f"rows in file {rows} >= last flush rows_total {flushed} ({n_flush} flush lines)"
                 if flushed is not None else f"rows in file {rows}, no flush line in the log")
    cut = ", truncated last log line ignored" if bad_lines else ""
    print(f"check_crash_file: OK {args.file}{open_note}: gdlab_status {status}, {sum(counts.values())} tasks "
          f"({by_status or 'none'}), {n_series} series; {flush_txt}{cut}; {n_done} done tasks complete and finite")
    return 0


if __name__ == "__main__":
    sys.exit(main())
