"""Process liveness (for the lock and build folders that name their process) and dying with a parent."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


PR_SET_PDEATHSIG, PR_SET_NAME = 1, 15  # linux/prctl.h


def prctl(option: int, value: Any) -> bool:
    """Linux's ``prctl(option, value)``; whether it took (False elsewhere)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(option, value) == 0)
    except (OSError, AttributeError):
        return False


def die_with_parent(parent_pid: int, sig: int) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies; exit now if it already did.

    ``parent_pid`` is the parent this process was started by: if it died before the request (the
    race a request after start-up always has), we were re-parented and exit at once. Linux only;
    elsewhere nothing happens.
    """
    if prctl(PR_SET_PDEATHSIG, sig) and os.getppid() != parent_pid:
        os._exit(128 + sig)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (``kill``, a scheduler's cancel) stops as Ctrl-C does: cleanly, resumable.

    Only the main thread can set a handler; elsewhere (a library call from a thread) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
