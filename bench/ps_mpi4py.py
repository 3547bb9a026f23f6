#!/usr/bin/python3
"""A plain mpi4py parameter server, the comparison point of issue 4: rank 0 serves, ranks 1..k
pull the weights, compute the gradient of ½‖w‖², push it; blocking send/recv.
    mpirun -n 4 /usr/bin/python3 bench/ps_mpi4py.py [P ...]"""
import sys
import time

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
PULL, WEIGHTS, PUSH, STOP = 1, 2, 3, 4
sizes = [int(a) for a in sys.argv[1:]] or [10, 1000, 100000]
for P in sizes:
    updates = 40000 if P <= 10 else 20000 if P <= 1000 else 500
    comm.Barrier()
    start = time.perf_counter()
    if rank == 0:
        w = np.ones(P)
        g = np.empty(P)
        applied, stopped = 0, 0
        status = MPI.Status()
        while stopped < size - 1:
            comm.Recv([g, MPI.DOUBLE], source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status)
            src, tag = status.Get_source(), status.Get_tag()
            if tag == PUSH:
                if applied < updates:
                    w -= 1e-6 * g
                    applied += 1
            elif tag == PULL:
                if applied >= updates:
                    comm.Send([w, MPI.DOUBLE], dest=src, tag=STOP)
                    stopped += 1
                else:
                    comm.Send([w, MPI.DOUBLE], dest=src, tag=WEIGHTS)
        s = time.perf_counter() - start
        print(f"mpi4py ps: P={P} workers={size - 1} updates={updates} in {s:.3f} s: {updates / s:.0f} updates/s",
              flush=True)
    else:
        w = np.empty(P)
        status = MPI.Status()
        while True:
            comm.Send([w, MPI.DOUBLE], dest=0, tag=PULL)
            comm.Recv([w, MPI.DOUBLE], source=0, tag=MPI.ANY_TAG, status=status)
            if status.Get_tag() == STOP:
                break
            comm.Send([w.copy(), MPI.DOUBLE], dest=0, tag=PUSH)
