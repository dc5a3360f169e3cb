"""The lock a grid cell's trainer holds: ``run.lock`` holding ``"<host> <pid>"``, taken over only when stale.

Taking: the content is written to a temporary file and hard-linked to ``run.lock``, so a lock exists
whole or not at all and only one of several takers can create it.

Taking over: a lock is stale when it is empty or unreadable (a full disk) or its process on this
host is dead. Judging and removing happen under an exclusive ``flock`` of ``.lock.takeover`` in the
cell folder, taken without waiting, and the holder is read again under it; so of two processes that
both judged one lock stale, the second either finds the takeover busy or re-reads the first one's
fresh, live lock, and never removes it. The kernel drops a ``flock`` when its process dies, so the
takeover file never goes stale itself.

File systems: linking and ``flock`` work on local file systems (ext4, xfs, btrfs, tmpfs) and on NFS
and other shared file systems. Only a process on the holder's own host can judge a PID dead, so
the processes racing to take over one lock run on one host, where ``flock`` serialises them even
on a mount without cross-host locking (NFS ``nolock``, Lustre ``localflock``). Where ``flock``
is not supported at all (e.g. Lustre mounted ``noflock``), a stale lock is reported, never taken
over, and the message says to delete it. A lock held on another host is never judged stale:
nothing here can tell whether that process still runs, and no age rule is applied (a cell may
legitimately train for days); the busy message says how to clear it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from imbal.engine import run_dir as rd
from imbal.errors import RunFolderError
from imbal.processes import pid_alive

TAKEOVER = rd.LOCK_TEMP_PREFIX + "takeover"  # the flock that serialises take-overs of one lock


def lock_holder(lock: Path) -> tuple[str, int] | None:
    """``(host, pid)`` of a lock, or None when it is missing, empty or unreadable (we never write those)."""
    try:
        host, pid = lock.read_text().split()
        return host, int(pid)
    except (OSError, ValueError):
        return None


def _read_lock(lock: Path) -> tuple[bool, tuple[str, int] | None]:
    """Whether ``lock`` exists and its holder, from one open (no gap between the two answers)."""
    try:
        with open(lock, "rb") as f:
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return False, None
    except OSError:
        return True, None
    try:
        host, pid = text.split()
        return True, (host, int(pid))
    except ValueError:
        return True, None


def _holder_gone(holder: tuple[str, int] | None) -> bool:
    return holder is None or (holder[0] == socket.gethostname() and not pid_alive(holder[1]))


def busy_message(lock: Path, holder: tuple[str, int] | None) -> str:
    """Who holds ``lock``, and for a holder on another host how to clear the lock if it is gone."""
    if holder is None:
        return str(lock)
    host, pid = holder
    text = f"{lock} is held by process {pid} on {host}"
    if host != socket.gethostname():
        text += (
            f" (another machine: this one cannot tell whether it still runs; if that process is gone, "
            f"e.g. its job ended or {host} restarted, delete {lock} and run again)"
        )
    return text


def _remove_if_stale(run: Path, lock: Path) -> str | None:
    """Under the takeover flock: remove ``lock`` if it is (still) stale; else why it was not removed."""
    fd = os.open(run / TAKEOVER, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return f"{lock} is being taken over by another process"
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            return (
                f"{lock} looks stale (its process is gone), but this file system cannot lock "
                f"({exc.strerror}), so it is not taken over automatically; delete {lock} and run again"
            )
        # only a take-over removes a stale lock (its holder is gone), and take-overs are serialised
        # here: the lock read now is the one removed below
        exists, holder = _read_lock(lock)
        if not exists:
            return None
        if not _holder_gone(holder):
            return busy_message(lock, holder)
        lock.unlink(missing_ok=True)
        return None
    finally:
        os.close(fd)  # releases the flock


def acquire(run: Path) -> str | None:
    """Take ``run.lock``; None on success, else a line naming the lock and its live holder."""
    run.mkdir(parents=True, exist_ok=True)
    lock = run / rd.LOCK
    fd, tmp = tempfile.mkstemp(dir=run, prefix=rd.LOCK_TEMP_PREFIX)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(f"{socket.gethostname()} {os.getpid()}\n")
        for _ in range(3):
            try:
                os.link(tmp, lock)  # fails if the lock exists; never leaves an empty lock behind
                return None
            except FileExistsError:
                holder = lock_holder(lock)
                if not _holder_gone(holder):
                    return busy_message(lock, holder)
                busy = _remove_if_stale(run, lock)
                if busy:
                    return busy
        return f"{lock} could not be taken"
    finally:
        os.unlink(tmp)


def release(run: Path) -> None:
    (run / rd.LOCK).unlink(missing_ok=True)


# ---------------------------------------------------------------- shards of one study folder

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
