#!/usr/bin/python3
"""Plain-numpy baseline for bench/bench_gd.cc: GD on the logistic sum loss (separable.md §0.1-0.2).

Same sizes as the C++ benchmark (N = 40 points, d = 5, eta = 4/sigma_max^2, w(0) = 0). Only speed is
compared, so the data are simply random linearly separable points through the origin (not planted2).
Prints one line: "numpy_gd: steps=... seconds=... wall_seconds=... steps_per_second=...", where
seconds is the process CPU time of the loop (what Google Benchmark's items_per_second uses) and
steps_per_second = steps / seconds.
"""
import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200_000, help="GD steps to time")
    parser.add_argument("--n", type=int, default=40, help="number of points N")
    parser.add_argument("--d", type=int, default=5, help="dimension d")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    w_star = rng.standard_normal(args.d)
    x = rng.standard_normal((args.n, args.d))
    x_tilde = x * np.sign(x @ w_star)[:, None]  # absorbed labels y_n x_n, separable through 0
    eta = 4.0 / np.linalg.norm(x_tilde, 2) ** 2
    w = np.zeros(args.d)

    start_wall = time.perf_counter()
    start = time.process_time()
    for _ in range(args.steps):
        margins = x_tilde @ w
        weights = 1.0 / (1.0 + np.exp(margins))  # -l'(u) for the logistic loss
        w += eta * (x_tilde.T @ weights)
    seconds = time.process_time() - start
    wall_seconds = time.perf_counter() - start_wall

    loss = np.sum(np.logaddexp(0.0, -(x_tilde @ w)))
    assert np.isfinite(loss) and np.all(np.isfinite(w))
    print(f"numpy_gd: steps={args.steps} seconds={seconds:.4f} wall_seconds={wall_seconds:.4f} "
          f"steps_per_second={args.steps / seconds:.6g} final_loss={loss:.6g}")


if __name__ == "__main__":
    main()
