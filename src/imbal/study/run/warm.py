"""Warm processes for grid cells (docs/method.md, "Running a study").

A multiprocessing forkserver imports the training stack once per grid process
(:mod:`imbal.study.run.preload`), and every cell trains in a fresh process forked from it: no cell pays
for imports, and no cell sees what an earlier one did to its process (thread count, default dtype,
RNG state, module globals, a crash). The forkserver is a single-threaded process started by exec,
never the grid itself (which runs threads, and as a library may have touched CUDA), and it only
imports: it never initialises CUDA, so each child can.

The kernel kills the forkserver when the grid dies and a child when the forkserver dies (Linux
parent-death signals), so a killed grid leaves no trainer behind. A child takes the grid's current
environment (the server keeps the one it started with), sends its output to a file the grid reads
when it fails, and reports over a pipe whether it returned or what it raised; a child that dies
without reporting (a segfault, the out-of-memory killer) is described by its exit status.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from imbal.errors import UserError
from imbal.processes import PR_SET_NAME, die_with_parent, pid_alive, prctl

PRELOAD = "imbal.study.run.preload"
CHILD_NAME = b"imbal-cell"  # what ps and /proc/<pid>/comm show for a cell's process
OUTPUT_TAIL = 4000  # characters of a failed child's output kept in error.txt
EXIT_GRACE = 60.0  # seconds a child that reported may take to exit before it is terminated

# Process.start() polls every other child of this process (multiprocessing's cleanup), and two
# threads reading one child's exit status at once can lose it: starts and joins take turns
_turns = threading.Lock()


class CellFailed(Exception):
    """A cell's process did not return: ``text`` says what it raised or how it died (error.txt)."""

    def __init__(self, text: str) -> None:
        super().__init__(text.splitlines()[0])
        self.text = text


class CellStopped(Exception):
    """The grid stopped this cell's process (an interrupt): the cell is resumable, not failed."""


class Children:
    """The cell processes of one grid, so that one interrupt stops them all.

    A cell's process ignores SIGINT (the terminal sends Ctrl-C to the whole process group): the grid
    alone decides, and stops every running cell with SIGTERM. A run's files are written atomically, so
    a stopped cell resumes from its last checkpoint.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[Any] = set()
        self.stopping = threading.Event()

    def add(self, child: Any) -> None:
        with self._lock:
            self._live.add(child)
            stop = self.stopping.is_set()
        if stop:  # started while the grid was being stopped
            child.terminate()

    def discard(self, child: Any) -> None:
        with self._lock:
            self._live.discard(child)

    def stop_all(self) -> None:
        with self._lock:
            self.stopping.set()
            live = list(self._live)
        for child in live:
            child.terminate()


def error_text(exc: BaseException) -> str:
    """A failure as error.txt holds it: type and message, then the traceback (a user error: the message)."""
    if isinstance(exc, UserError):
        return f"{type(exc).__name__}: {exc}\n"  # one line, as the CLI prints it
    return f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"


def start_method() -> str:
    # Windows has no fork: there each cell's process imports the training stack itself
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def context() -> Any:
    ctx = multiprocessing.get_context(start_method())
    if start_method() == "forkserver":
        ctx.set_forkserver_preload([PRELOAD])
    return ctx


def start_server() -> None:
    """Start the forkserver now: it imports while the grid prepares, and lives as long as the grid."""
    context()
    if start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def server_ready() -> float:
    """Wait until the server has imported everything (a first fork returns); the seconds waited."""
    t = time.perf_counter()
    run_in_child(os.getpid)
    return time.perf_counter() - t


def run_in_child(target: Callable[..., Any], *args: Any, children: Children | None = None) -> None:
    """``target(*args)`` in a fresh process forked from the warm server; :class:`CellFailed` if it did not return,
    :class:`CellStopped` if ``children`` were stopped meanwhile (and on an interrupt here: the child is stopped).

    ``target`` must be importable by name (it travels pickled, as a reference).
    """
    children = children or Children()
    ctx = context()
    fd, output = tempfile.mkstemp(prefix="imbal-cell-", suffix=".out")
    os.close(fd)
    receive, send = ctx.Pipe(duplex=False)
    try:
        child = ctx.Process(
            target=child_main,
            args=(send, output, dict(os.environ), os.getpid(), target, args),
            name=CHILD_NAME.decode(),
            daemon=True,  # terminated, not waited for, if the grid exits while it trains
        )
        with _turns:
            child.start()
        children.add(child)
        send.close()  # the child holds the only writer now: EOF means it is gone
        try:
            kind, text = receive.recv()
        except EOFError:
            kind, text = "died", ""
        except KeyboardInterrupt:  # the interrupt reached this thread: stop the child before leaving
            children.stop_all()
            _reap(child)
            raise
        finally:
            children.discard(child)
        if kind == "died" and children.stopping.is_set():
            _reap(child)
            raise CellStopped(f"stopped by the grid ({how_it_ended(child.exitcode)})")
        if kind == "died":
            text = f"CellDied: the cell's process {how_it_ended(_reap(child))}\n\n{_tail(output)}"
        else:
            # it has reported and touches its run folder no more; its exit (unmapping a process the
            # size of the server: 30-150 ms) need not delay the next cell
            threading.Thread(target=_reap, args=(child,), name="imbal-reap", daemon=True).start()
        if kind != "returned":
            raise CellFailed(text)
    finally:
        send.close()
        receive.close()
        os.unlink(output)


def _reap(child: Any) -> int | None:
    """Wait for a child that reported or died; one that lingers after reporting is terminated."""
    if not wait([child.sentinel], EXIT_GRACE):
        child.terminate()
        wait([child.sentinel])
    with _turns:
        child.join()
    return child.exitcode


def how_it_ended(exitcode: int | None) -> str:
    if exitcode is None or exitcode >= 0:
        return f"exited with code {exitcode} without reporting"
    name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else str(-exitcode)
    text = f"was killed by {name} (exit code {exitcode})"
    if -exitcode == signal.SIGKILL:
        text += "; the kernel's out-of-memory killer sends SIGKILL, so check the memory a cell needs"
    return text


def _tail(output: str) -> str:
    lines = Path(output).read_text(errors="replace").splitlines(keepends=True)
    # after a crash's stack, faulthandler lists every loaded extension module: thousands of characters
    text = "".join(line for line in lines if not line.startswith("Extension modules:"))
    return f"output (last {OUTPUT_TAIL} characters):\n{text[-OUTPUT_TAIL:]}" if text else "no output"


# ---------------------------------------------------------------- in the child


def child_main(
    report: Connection,
    output: str,
    environ: dict[str, str],
    grid_pid: int,
    target: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    """A cell's process: run ``target(*args)`` and report whether it returned or what it raised."""
    prctl(PR_SET_NAME, CHILD_NAME)
    # Ctrl-C reaches the whole process group: the grid decides, and stops this process itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(os.getppid(), signal.SIGKILL)  # the server's death kills this cell
    if not pid_alive(grid_pid):
        os._exit(137)  # the grid, and so the server, died before that took effect: no signal would come
    os.environ.clear()
    os.environ.update(environ)
    _redirect_output(output)
    try:
        target(*args)
    except BaseException as exc:  # everything, KeyboardInterrupt too, is the grid's to record
        report.send(("raised", error_text(exc)))
    else:
        report.send(("returned", ""))


def _redirect_output(output: str) -> None:
    """Output to the file the grid reads on failure; a fatal signal leaves the Python stack there too."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(output, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    faulthandler.enable(all_threads=True)
