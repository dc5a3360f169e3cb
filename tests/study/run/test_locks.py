"""Cell locks: one taker wins a stale lock even when two race for it; other hosts' locks say how to clear them."""

import socket
import subprocess
import sys
import textwrap

import imbal.study.run.locks as locks
from imbal.engine import run_dir as rd

OTHER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from imbal.study.run.locks import acquire
    print(acquire(Path(sys.argv[1])), flush=True)
    sys.stdin.read()  # hold the lock until the test closes our stdin
    """
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_two_takers_of_one_stale_lock_never_both_win(tmp_path, monkeypatch):
    # the interleaving that let two processes train one cell: A judges the lock stale, B takes it
    # over and holds it, then A goes on. A must see B's live lock, not remove it.
    run = tmp_path / "cell"
    run.mkdir()
    (run / rd.LOCK).write_text(f"{socket.gethostname()} {_dead_pid()}\n")
    other: list[subprocess.Popen] = []
    real = locks.lock_holder

    def judge_then_let_b_run(lock):
        holder = real(lock)
        if not other:
            other.append(
                subprocess.Popen(
                    [sys.executable, "-c", OTHER, str(run)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            other[0].b_result = other[0].stdout.readline().strip()  # type: ignore[attr-defined]
        return holder

    monkeypatch.setattr(locks, "lock_holder", judge_then_let_b_run)
    try:
        a_result = locks.acquire(run)
        b = other[0]
        assert b.b_result == "None"  # B took the stale lock over
        assert a_result is not None and f"held by process {b.pid}" in a_result
        assert real(run / rd.LOCK) == (socket.gethostname(), b.pid)
    finally:
        for p in other:
            p.stdin.close()
            p.wait()


def test_takeover_in_progress_elsewhere_is_busy(tmp_path):
    import fcntl
    import os

    run = tmp_path / "cell"
    run.mkdir()
    (run / rd.LOCK).write_text("")  # stale: empty
    fd = os.open(run / locks.TAKEOVER, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert locks.acquire(run) == f"{run / rd.LOCK} is being taken over by another process"
    finally:
        os.close(fd)
    assert locks.acquire(run) is None
    assert locks.lock_holder(run / rd.LOCK) == (socket.gethostname(), os.getpid())


def test_lock_of_another_host_says_how_to_clear_it(tmp_path):
    run = tmp_path / "cell"
    run.mkdir()
    (run / rd.LOCK).write_text("node-17 4242\n")
    msg = locks.acquire(run)
    assert msg.startswith(f"{run / rd.LOCK} is held by process 4242 on node-17 (another machine")
    assert f"delete {run / rd.LOCK} and run again" in msg
    assert (run / rd.LOCK).read_text() == "node-17 4242\n"  # never taken over
