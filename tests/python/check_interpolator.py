#!/usr/bin/python3
"""Reads a random_interpolator campaign file back with h5py and checks its learning curves.

Usage: check_interpolator.py FILE.h5 ACCEPTED_PER_N

For every done task: the survival histograms sum to the guess counts; every stream kept exactly
A samples at N_max (none hit the guess budget in the test campaign) and never more than A at any
N; accepted samples fit at least N points; the test error starts at the prior's 0.5 (within 0.1)
and falls with N to below 0.2 at N_max; the acceptance rate p(S_N) is non-increasing; the theory
overlay (ln 1/p*, the bound (ln(1/p*) + 1)/N) is present and the curve stays under the bound.
"""
import sys

import h5py
import numpy as np


def main():
    path, A = sys.argv[1], int(sys.argv[2])
    with h5py.File(path, "r") as f:
        tasks = f["tasks"]
        assert len(tasks) > 0, "no tasks"
        for name in tasks:
            g = tasks[name]
            assert g.attrs["status"] == "done", (name, g.attrs["status"])
            grid = g["parameters/n_grid"][()].astype(int)
            surv = g["parameters/survival"][()]
            guesses = g["parameters/guesses"][()]
            assert np.array_equal(surv.sum(axis=1), guesses), f"{name}: survival does not sum to the guesses"
            count = g["parameters/accepted_count"][()]
            assert np.all(count[:, -1] == A), f"{name}: streams without A samples at N_max: {count[:, -1]}"
            assert np.all(count <= A), name
            fitted = g["parameters/accepted_fitted"][()]
            for i, n in enumerate(grid):
                got = fitted[:, i, :]
                got = got[~np.isnan(got)]
                assert np.all(got >= n), f"{name}: a sample kept at N={n} fits only {got.min()} points"
            err = g["observables/test_error/value"][()][:, 0]
            assert abs(err[0] - 0.5) < 0.1 and grid[0] == 0, f"{name}: prior error {err[0]}"
            assert err[-1] < 0.2 and err[-1] < err[0] - 0.25, f"{name}: no learning: {err}"
            acc = g["observables/acceptance/value"][()][:, 0]
            assert np.all(np.diff(acc) <= 0), f"{name}: p(S_N) increases: {acc}"
            lnp = g.attrs["ln_inverse_p_star"]
            assert np.isfinite(lnp) and lnp > 0, f"{name}: ln 1/p* = {lnp}"
            bound = g["theory/error_bound/value"][()]
            steps = g["theory/error_bound/step"][()]
            for n, b in zip(steps, bound):
                i = list(grid).index(n)
                assert err[i] <= b + 1e-12, f"{name}: error {err[i]} above the bound {b} at N={n}"
            print(f"{name}: G={int(guesses.sum())}, err {np.round(err, 3).tolist()}, ln 1/p* {lnp:.3f}, "
                  f"verdict {g.attrs['verdict']}")
    print("check_interpolator: OK", path)


if __name__ == "__main__":
    main()
