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
import socket
import tempfile
from pathlib import Path

from imbal.engine import run_dir as rd
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
