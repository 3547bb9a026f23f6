#!/usr/bin/python3
"""Assert that two gdlab campaign files hold bitwise identical results.

Usage:
    compare_observables.py A.h5 B.h5 [--ignore-attr NAME ...]

Checks that both files have the same set of /tasks/<name> groups and, task by task:
  - the same task attributes with equal dtype and value (status, verdict, error, seed, ...), except
    attributes that legitimately differ between runs (worker_rank, wall_seconds, created, plus any
    --ignore-attr);
  - the same config string;
  - the same set of datasets under observables/, theory/ and parameters/, each with the same dtype,
    shape and bytes (numpy tobytes()).
Stops at the first difference, prints it and exits 1; exits 2 if a file cannot be opened. On success
prints "compare_observables: OK ..." with the number of datasets compared.
"""

import argparse
import sys

import h5py
import numpy as np

DEFAULT_IGNORED = ("worker_rank", "wall_seconds", "created")
COMPARED_GROUPS = ("observables", "theory", "parameters")


class Difference(Exception):
    pass


def attr_value(obj, name):
    """(dtype, comparable value) of an attribute."""
    aid = obj.attrs.get_id(name)
    value = obj.attrs[name]
    if h5py.check_string_dtype(aid.dtype) is not None:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, np.ndarray):
            value = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value.reshape(-1)]
        return aid.dtype, aid.shape, value
    arr = np.asarray(value)
    return aid.dtype, aid.shape, arr.tobytes()


def compare_attrs(a, b, ignored):
    na = set(a.attrs.keys()) - ignored
    nb = set(b.attrs.keys()) - ignored
    if na != nb:
        raise Difference(f"{a.name}: attribute sets differ: only in A {sorted(na - nb)}, "
                         f"only in B {sorted(nb - na)}")
    for name in sorted(na):
        da, sa, va = attr_value(a, name)
        db, sb, vb = attr_value(b, name)
        if da != db or sa != sb:
            raise Difference(f"{a.name}: attribute '{name}': dtype/shape {da}{sa} vs {db}{sb}")
        if va != vb:
            raise Difference(f"{a.name}: attribute '{name}': {a.attrs[name]!r} vs {b.attrs[name]!r}")


def datasets_under(group):
    """{relative path: dataset} for every dataset below `group`, plus the set of subgroup paths."""
    found, groups = {}, set()

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found[name] = obj
        else:
            groups.add(name)
    group.visititems(visit)
    return found, groups


def describe_first_mismatch(x, y):
    if x.dtype.kind not in "fiub" or x.shape != y.shape:
        return ""
    neq = (x != y) if x.dtype.kind != "f" else ~((x == y) | (np.isnan(x) & np.isnan(y)))
    # Same value but different bits (e.g. -0.0 vs 0.0, NaN payloads) still counts as a difference.
    if not np.any(neq):
        xb = np.ascontiguousarray(x).reshape(-1).view(np.uint8)
        yb = np.ascontiguousarray(y).reshape(-1).view(np.uint8)
        i = int(np.nonzero(xb != yb)[0][0]) // max(x.dtype.itemsize, 1)
        idx = np.unravel_index(i, x.shape) if x.shape else ()
        return f"; element {tuple(int(k) for k in idx)} has equal value but different bits"
    idx = tuple(int(k) for k in np.argwhere(neq)[0]) if x.shape else ()
    return (f"; {int(np.count_nonzero(neq))} of {x.size} elements differ, first at index {idx}: "
            f"{x[idx]!r} vs {y[idx]!r}")


def compare_dataset(path, da, db):
    if da.dtype != db.dtype:
        raise Difference(f"{path}: dtype {da.dtype} vs {db.dtype}")
    if da.shape != db.shape:
        raise Difference(f"{path}: shape {da.shape} vs {db.shape}")
    if h5py.check_string_dtype(da.dtype) is not None or da.dtype.kind == "O":
        va, vb = da.asstr()[()] if h5py.check_string_dtype(da.dtype) else da[()], \
            db.asstr()[()] if h5py.check_string_dtype(db.dtype) else db[()]
        va = va.tolist() if isinstance(va, np.ndarray) else va
        vb = vb.tolist() if isinstance(vb, np.ndarray) else vb
        if va != vb:
            raise Difference(f"{path}: string contents differ")
        return sum(len(str(v)) for v in (va if isinstance(va, list) else [va]))
    xa, xb = np.asarray(da[()]), np.asarray(db[()])
    ba, bb = xa.tobytes(), xb.tobytes()
    if ba != bb:
        raise Difference(f"{path}: bytes differ{describe_first_mismatch(xa, xb)}")
    return len(ba)


def compare_files(fa, fb, ignored):
    """(tasks, datasets, bytes) compared; raises Difference at the first difference."""
    for f, label in ((fa, "A"), (fb, "B")):
        if "tasks" not in f or not isinstance(f["tasks"], h5py.Group):
            raise Difference(f"file {label} has no /tasks group")
    ta, tb = set(fa["tasks"].keys()), set(fb["tasks"].keys())
    if ta != tb:
        raise Difference(f"task sets differ: only in A {sorted(ta - tb)[:10]}, only in B {sorted(tb - ta)[:10]}")
    n_ds = n_bytes = 0
    for name in sorted(ta):
        ga, gb = fa["tasks"][name], fb["tasks"][name]
        if not isinstance(ga, h5py.Group) or not isinstance(gb, h5py.Group):
            raise Difference(f"/tasks/{name}: not a group in both files")
        compare_attrs(ga, gb, ignored)
        if ("config" in ga) != ("config" in gb):
            raise Difference(f"/tasks/{name}/config: present in only one file")
        if "config" in ga:
            n_bytes += compare_dataset(f"/tasks/{name}/config", ga["config"], gb["config"])
            n_ds += 1
        for sub in COMPARED_GROUPS:
            if (sub in ga) != (sub in gb):
                raise Difference(f"/tasks/{name}/{sub}: present in {'A' if sub in ga else 'B'} only")
            if sub not in ga:
                continue
            da, groups_a = datasets_under(ga[sub])
            db, groups_b = datasets_under(gb[sub])
            if set(da) != set(db) or groups_a != groups_b:
                raise Difference(f"/tasks/{name}/{sub}: contents differ: only in A "
                                 f"{sorted((set(da) | groups_a) - (set(db) | groups_b))[:10]}, only in B "
                                 f"{sorted((set(db) | groups_b) - (set(da) | groups_a))[:10]}")
            for rel in sorted(da):
                n_bytes += compare_dataset(f"/tasks/{name}/{sub}/{rel}", da[rel], db[rel])
                n_ds += 1
    return len(ta), n_ds, n_bytes


def main(argv=None):
    ap = argparse.ArgumentParser(description="Assert two gdlab campaign files hold identical results.")
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--ignore-attr", action="append", default=[],
                    help="task attribute to ignore (repeatable); always ignored: " + ", ".join(DEFAULT_IGNORED))
    args = ap.parse_args(argv)
    ignored = set(DEFAULT_IGNORED) | set(args.ignore_attr)
    files = []
    for path in (args.a, args.b):
        try:
            files.append(h5py.File(path, "r"))
        except (OSError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"compare_observables: FAIL cannot open {path}: {first}", file=sys.stderr)
            for f in files:
                f.close()
            return 2
    fa, fb = files
    try:
        with fa, fb:
            n_tasks, n_ds, n_bytes = compare_files(fa, fb, ignored)
    except Difference as exc:
        print(f"compare_observables: FAIL {args.a} vs {args.b}: first difference: {exc}", file=sys.stderr)
        return 1
    except (OSError, KeyError) as exc:
        print(f"compare_observables: FAIL read error: {exc}", file=sys.stderr)
        return 1
    print(f"compare_observables: OK {args.a} == {args.b}: {n_tasks} tasks, {n_ds} datasets compared "
          f"({n_bytes} bytes), ignoring attributes {', '.join(sorted(ignored))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
