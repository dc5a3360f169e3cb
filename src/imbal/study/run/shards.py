"""The shards of one study folder agree on n: each process holds a seat while it runs.

A seat is a shared ``flock`` on ``<study>/.shards/<i>of<n>`` (several processes may run one shard:
the cells' locks keep them from training a cell twice). The kernel drops a process's flocks when it
dies, so a seat is held exactly while its process lives: a process with another n is refused while
one runs, and a race shard whose own cells are done can take over the cells of a shard that is not
running (never started, or died) instead of waiting for them forever. File systems without
``flock`` (see :mod:`imbal.study.run.locks`) cannot tell: every shard then counts as running.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from imbal.engine import run_dir as rd
from imbal.errors import RunFolderError

SHARDS = ".shards"  # <study>/.shards/<i>of<n>: held (flock) by the live process of shard i/n


@dataclass
class ShardSeat:
    """This process's place among the shards working on one study folder (see :func:`take_seat`).

    A seat is a shared ``flock`` on ``<root>/.shards/<i>of<n>`` (several processes may run one
    shard: locks keep them from training a cell twice). ``live(i)`` says whether shard i of this n
    runs now, so that a shard whose own cells are done can take over the cells of a shard that is
    not running (never started, or died). Without ``flock`` support (some shared file systems)
    nothing can be said: every shard counts as live.
    """

    root: Path
    index: int
    count: int
    fd: int | None = None

    def live(self, index: int) -> bool:
        if index == self.index:
            return True
        if self.fd is None:
            return True
        return _held(self.root / SHARDS / _seat_name(index, self.count))

    def release(self) -> None:
        if self.fd is not None:  # the file stays: another process may hold the same seat
            os.close(self.fd)
            self.fd = None


def _seat_name(index: int, count: int) -> str:
    return f"{index}of{count}"


def _held(path: Path) -> bool:
    """Whether a live process holds a seat's flock (False: free, missing or unreadable)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also drops our probe's shared lock
    return False


def _seat_text(path: Path) -> str:
    try:
        host, pid, started = (path.parent / f".{path.name}.who").read_text().split()
        return f"pid {pid} on {host}, since {started}"
    except (OSError, ValueError):
        return "a live process"


def take_seat(root: Path, shard: tuple[int, int]) -> ShardSeat:
    """Hold ``<root>/.shards/<i>of<n>`` while this shard runs; refuse while shards of another n run.

    Seats are judged under one flock of the folder, and a seat's flock dies with its process, so a
    killed shard never blocks a rerun: its seat is free and is taken again.
    """
    index, count = shard
    seat = ShardSeat(Path(root), index, count)
    folder = Path(root) / SHARDS
    folder.mkdir(parents=True, exist_ok=True)
    guard = os.open(folder / ".join", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(guard, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return seat  # no locking here: shards are not checked (the cells' own locks still hold)
            raise
        _check_others(folder, index, count)
        path = folder / _seat_name(index, count)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(fd, fcntl.LOCK_SH)  # never blocks: only probes take it exclusively, without waiting
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        rd.atomic_write_text(
            folder / f".{path.name}.who", f"{socket.gethostname()} {os.getpid()} {started}\n"
        )
        seat.fd = fd
        return seat
    finally:
        os.close(guard)


def _check_others(folder: Path, index: int, count: int) -> None:
    for path in sorted(folder.iterdir()):
        match = re.fullmatch(r"(\d+)of(\d+)", path.name)
        if match is None or not _held(path):
            continue
        i, n = int(match[1]), int(match[2])
        if n != count:
            raise RunFolderError(
                f"{_shown(index, count)} refused: {folder.parent} is being run by {_shown(i, n)} "
                f"({_seat_text(path)}); every process of one study uses the same n "
                f"({f'--shard i/{n}' if n > 1 else 'no --shard'})"
            )


def _shown(index: int, count: int) -> str:
    return f"shard {index}/{count}" if count > 1 else "a process without --shard"
