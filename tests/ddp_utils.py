"""Run a function in two gloo processes on CPU and collect what each rank returns."""

import os
import socket
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, fn, args, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.save(fn(rank, world, *args), os.path.join(out_dir, f"{rank}.pt"))
        dist.barrier()  # every rank's work is done: only the teardown is left
        open(os.path.join(out_dir, f"{rank}.done"), "w").close()
    finally:
        dist.destroy_process_group()


def run_gloo(fn, *args, world: int = 2) -> list:
    """What ``fn(rank, world, *args)`` returned on each rank.

    gloo can abort a process in its C++ teardown after the work is done ("terminate called without an
    active exception", SIGABRT; seen in two of three full-suite runs here, in different tests). Such a
    crash is accepted only when every rank wrote its result and passed the barrier after it; any other
    failure fails the test.
    """
    with tempfile.TemporaryDirectory() as out:
        try:
            mp.spawn(_worker, args=(world, free_port(), fn, args, out), nprocs=world, join=True)
        except mp.ProcessExitedException as exc:
            done = all(os.path.exists(os.path.join(out, f"{r}.done")) for r in range(world))
            if not (done and exc.signal_name == "SIGABRT"):
                raise
        return [torch.load(os.path.join(out, f"{r}.pt")) for r in range(world)]
