#!/usr/bin/env python3
"""Batched guess-and-check in PyTorch, the way Chiang et al.'s code does it (shared/papers/
interpolators.md §3.5, §6.1): draw a batch of B candidate networks' ternary weights, evaluate every
candidate on all N training points (no early rejection), count the candidates that fit all of them.

Headline problem of issue 3 §3 and §7.1: d = 8 inputs uniform on {±1}^8, teacher y = maj(x1, x2, x3),
student h_j = sgn(w_j·x + b_j), f = sgn(v·h + c), all parameters uniform on {−1, 0, 1},
sgn(0) = +1. Prints one line per configuration:

    gc_torch width=4 n=32 dtype=float32 threads=2 batch=65536 guesses=... seconds=... guesses_per_second=...

Rates use wall-clock time (the run is multi-threaded). Runs with Debian's /usr/bin/python3 and
python3-torch on the CPU; --device cuda runs the same code on a GPU.
"""
import argparse
import time

import torch


def make_data(n, d, generator, device):
    x = torch.randint(0, 2, (n, d), generator=generator, device="cpu").to(device) * 2 - 1
    y = torch.where(x[:, :3].sum(dim=1) >= 0, 1, -1)
    return x, y


def sign(z):
    # sgn(0) = +1 (spec §7.1)
    return torch.where(z >= 0, 1.0, -1.0).to(z.dtype)


def guess_and_check(width, n, batch, seconds, dtype, device, d=8, seed=0):
    generator = torch.Generator(device="cpu").manual_seed(seed)
    x, y = make_data(n, d, generator, device)
    xt = x.to(dtype).t().contiguous()  # (d, N)
    y = y.to(dtype)
    draw = torch.Generator(device=device).manual_seed(seed + 1)
    guesses = 0
    accepted = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        # One batch: B candidates, each with width hidden units (d weights + bias) and an output unit.
        w = (torch.randint(0, 3, (batch * width, d), generator=draw, device=device) - 1).to(dtype)
        b = (torch.randint(0, 3, (batch * width, 1), generator=draw, device=device) - 1).to(dtype)
        v = (torch.randint(0, 3, (batch, 1, width), generator=draw, device=device) - 1).to(dtype)
        c = (torch.randint(0, 3, (batch, 1), generator=draw, device=device) - 1).to(dtype)
        hidden = sign(w @ xt + b).view(batch, width, n)            # (B, k, N)
        out = sign((v @ hidden).view(batch, n) + c)                 # (B, N)
        accepted += int((out == y).all(dim=1).sum())
        guesses += batch
        if device != "cpu":
            torch.cuda.synchronize()
        now = time.perf_counter()
        if now >= deadline:
            return guesses, accepted, now - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="1:16,4:32", help="comma-separated width:N pairs")
    parser.add_argument("--batch", type=int, default=1 << 16)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtypes", default="float32,float16,bfloat16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for config in args.configs.split(","):
        width, n = (int(s) for s in config.split(":"))
        for name in args.dtypes.split(","):
            dtype = getattr(torch, name)
            try:
                guesses, accepted, seconds = guess_and_check(width, n, args.batch, args.seconds, dtype, args.device)
            except RuntimeError as error:  # e.g. half-precision matmul not implemented on this CPU
                print(f"gc_torch width={width} n={n} dtype={name} unsupported: {str(error).splitlines()[0]}")
                continue
            print(f"gc_torch width={width} n={n} dtype={name} threads={args.threads} batch={args.batch} "
                  f"guesses={guesses} accepted={accepted} seconds={seconds:.3f} "
                  f"guesses_per_second={guesses / seconds:.4g}", flush=True)


if __name__ == "__main__":
    main()
