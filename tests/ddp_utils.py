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
    finally:
        dist.destroy_process_group()


def run_gloo(fn, *args, world: int = 2) -> list:
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_worker, args=(world, free_port(), fn, args, out), nprocs=world, join=True)
        return [torch.load(os.path.join(out, f"{r}.pt")) for r in range(world)]
