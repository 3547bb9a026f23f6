#!/usr/bin/env bash
# async_sgd in MODE_MPI under a real mpirun: the coordinator gathers a group of ranks per task, the
# parameter server logs every update; staleness is exactly 0 with one worker, bounded by S under
# SSP, equal to applied - read version for every update, and latency covers the injected delay.
source "$(dirname "$0")/lib.sh"
gdlab=$1 spec=$2 dir=$3 python=$4
rm -rf "$dir" && mkdir -p "$dir"
gdlab_mpirun 180 4 "$gdlab" run "$spec" --out "$dir/async.h5" --quiet || fail "run exited $?"
"$python" - "$dir/async.h5" <<'PY'
import sys
import h5py
import numpy as np

with h5py.File(sys.argv[1], "r") as f:
    assert f.attrs["gdlab_status"] == "complete", f.attrs["gdlab_status"]
    for name, t in f["tasks"].items():
        exp = t.attrs["experiment"]
        assert t.attrs["status"] == "done" and t.attrs["verdict"] == "pass", (name, t.attrs["verdict_detail"])
        obs = t["observables"]
        st = obs["staleness/value"][:]
        read, applied = obs["read_version/value"][:], obs["applied_version/value"][:]
        assert np.array_equal(st, applied - read), name
        assert np.all(obs["latency_ms/value"][:] >= obs["injected_ms/value"][:]), name
        if exp == "one_worker":
            assert st.max() == 0, (name, st.max())
        if exp == "ssp_bound_1":
            assert st.max() <= 1, (name, st.max())
        if exp == "free_running":
            assert st.max() >= 1, (name, "two free-running workers never produced a stale gradient")
        print(f"{name} {exp}: {len(st)} updates, staleness max {st.max():.0f} mean {st.mean():.3f}, "
              f"latency mean {obs['latency_ms/value'][:].mean():.3f} ms")
PY
echo "async_mpi_test: OK"
