#!/usr/bin/python3
"""Checks a parameter-server campaign resumed from checkpoints against an uninterrupted run.

usage: check_ps_resume.py REFERENCE.h5 RESUMED.h5

For every task of the reference (issue 8 §2):
 - the resumed task is done, and its every series has exactly the reference's rows: the same
   steps (strictly increasing, so no row was appended twice and none lost) and, except for
   measured wall-clock quantities, bit-for-bit the same values;
 - every array under parameters/ is bit-for-bit the same;
 - the analysis attributes (verdict, order_mismatches, replay_w_bitwise, updates_done, ...) agree.
Measured quantities (the time column of MPI tasks, latency_ms, injected_ms after a resume, CPU
and wall seconds) differ between any two runs and are not compared.
"""
import sys

import h5py
import numpy as np

WALL_CLOCK_SERIES = {"observables/latency_ms", "observables/injected_ms"}
WALL_CLOCK_ATTRS = {"server_cpu_seconds", "server_wall_seconds", "wall_seconds", "worker_rank"}


def series_of(group, prefix=""):
    out = {}
    for name, obj in group.items():
        path = prefix + name
        if isinstance(obj, h5py.Group):
            if "step" in obj and "value" in obj and isinstance(obj["step"], h5py.Dataset):
                out[path] = obj
            else:
                out.update(series_of(obj, path + "/"))
    return out


def arrays_of(group, prefix=""):
    out = {}
    for name, obj in group.items():
        path = prefix + name
        if isinstance(obj, h5py.Dataset):
            out[path] = obj[()]
        elif not ("step" in obj and "value" in obj):
            out.update(arrays_of(obj, path + "/"))
    return out


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def main():
    ref_path, out_path = sys.argv[1], sys.argv[2]
    problems = []
    compared = 0
    with h5py.File(ref_path, "r") as ref, h5py.File(out_path, "r") as out:
        if out.attrs["gdlab_status"] not in (b"complete", "complete"):
            problems.append(f"{out_path}: status {out.attrs['gdlab_status']!r}, not complete")
        for task in ref["tasks"]:
            r, o = ref["tasks"][task], out["tasks"][task]
            status = o.attrs["status"]
            if status not in (b"done", "done"):
                problems.append(f"{task}: status {status!r}")
                continue
            mpi = r.attrs.get("mode") in (b"mpi", "mpi")
            rs, os_ = series_of(r), series_of(o)
            if sorted(rs) != sorted(os_):
                problems.append(f"{task}: series {sorted(set(rs) ^ set(os_))} in only one file")
            for path in sorted(set(rs) & set(os_)):
                steps = o[path]["step"][()]
                if len(steps) > 1 and not np.all(np.diff(steps) > 0):
                    problems.append(f"{task}/{path}: steps not strictly increasing (a row twice?)")
                if not same_bits(r[path]["step"][()], steps):
                    problems.append(f"{task}/{path}: steps differ ({len(r[path]['step'])} vs {len(steps)} rows)")
                    continue
                if path not in WALL_CLOCK_SERIES and not same_bits(r[path]["value"][()], o[path]["value"][()]):
                    problems.append(f"{task}/{path}: values differ")
                if not mpi and not same_bits(r[path]["time"][()], o[path]["time"][()]):
                    problems.append(f"{task}/{path}: times differ")
                compared += 1
            ra, oa = arrays_of(r), arrays_of(o)
            for path in sorted(set(ra) | set(oa)):
                if path not in ra or path not in oa:
                    problems.append(f"{task}/{path}: in only one file")
                elif not same_bits(ra[path], oa[path]):
                    problems.append(f"{task}/{path}: differs")
                compared += 1
            for name in sorted(set(r.attrs) | set(o.attrs)):
                if name in WALL_CLOCK_ATTRS:
                    continue
                if name not in r.attrs or name not in o.attrs:
                    problems.append(f"{task}: attribute {name} in only one file")
                elif not same_bits(r.attrs[name], o.attrs[name]):
                    problems.append(f"{task}: attribute {name}: {r.attrs[name]!r} vs {o.attrs[name]!r}")
            if mpi:
                for name, want in (("replay_w_bitwise", "yes"), ("order_mismatches", 0.0)):
                    got = o.attrs.get(name)
                    got = got.decode() if isinstance(got, bytes) else got
                    if got != want:
                        problems.append(f"{task}: {name} = {got!r}, expected {want!r}")
    if problems:
        print("\n".join(problems[:40]))
        print(f"check_ps_resume: FAIL: {len(problems)} problems")
        return 1
    print(f"check_ps_resume: OK: {compared} series/arrays equal to the uninterrupted run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
