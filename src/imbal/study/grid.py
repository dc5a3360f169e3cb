"""``imbal grid``: run every cell of a study; resumable, parallel on one machine, shardable across many.

Safety: a cell is finished when its ``metrics.json`` exists (written last, atomically), so a killed
grid never reads half a result. A cell being trained holds ``run.lock`` (created exclusively), so
several shards or ``--jobs`` workers writing into one folder never train the same cell twice; a
lock left by a dead process on this host is taken over. A failed cell writes ``error.txt`` and the
grid goes on; it is retried on the next start.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from imbal.engine import run_dir as rd
from imbal.study.spec import Cell, StudySpec


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


def shard_cells(cells: list[Cell], shard: tuple[int, int]) -> list[Cell]:
    i, n = shard
    return cells[i::n]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire(run: Path) -> bool:
    """Create ``run.lock`` exclusively; take over a lock whose process on this host is gone."""
    run.mkdir(parents=True, exist_ok=True)
    lock = run / "run.lock"
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                host, pid = lock.read_text().split()
            except (OSError, ValueError):
                return False
            if host == socket.gethostname() and not _pid_alive(int(pid)):
                lock.unlink(missing_ok=True)
                continue
            return False
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return True
    return False


def release(run: Path) -> None:
    (run / "run.lock").unlink(missing_ok=True)


def run_cell_inprocess(spec: StudySpec, cell: Cell, root: Path) -> None:
    from imbal.engine.trainer import train

    cfg = spec.config_for(cell, root)
    train(cfg, resume=True)


def run_cell_subprocess(spec: StudySpec, cell: Cell, root: Path, threads: int) -> None:
    cfg = spec.config_for(cell, root)
    run = Path(cfg.out)
    rd.write_yaml(run / rd.CONFIG, cfg.to_dict())
    env = dict(
        os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore"
    )
    res = subprocess.run(
        [sys.executable, "-m", "imbal.cli.main", "train", "--resume", str(run), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise RuntimeError(f"exit code {res.returncode}\n{res.stderr[-4000:]}")


def run_grid(
    spec: StudySpec,
    root: str | Path,
    *,
    jobs: int = 1,
    shard: tuple[int, int] = (0, 1),
    cells: list[Cell] | None = None,
    log=print,
) -> dict[str, list[str]]:
    """Run the cells of this shard that are not finished; return which finished, failed, were skipped.

    ``cells`` restricts the grid to a subset of ``spec.cells()`` (benchmarks run a fraction).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cells = shard_cells(spec.cells() if cells is None else cells, shard)
    todo = [c for c in cells if not rd.is_finished(c.run_dir(root))]
    status: dict[str, list[str]] = {"done": [], "failed": [], "skipped": [], "busy": []}
    status["skipped"] = [c.key for c in cells if c not in todo]
    log(
        f"grid: {len(cells)} cells in shard {shard[0]}/{shard[1]}, {len(status['skipped'])} already finished, "
        f"{len(todo)} to run with {jobs} job(s)"
    )
    threads = max(1, (os.cpu_count() or 1) // max(jobs, 1))
    t0 = time.perf_counter()
    finished = 0

    def work(cell: Cell) -> tuple[Cell, str, float]:
        run = cell.run_dir(root)
        if not acquire(run):
            return cell, "busy", 0.0
        t = time.perf_counter()
        try:
            if jobs == 1:
                run_cell_inprocess(spec, cell, root)
            else:
                run_cell_subprocess(spec, cell, root, threads)
            (run / "error.txt").unlink(missing_ok=True)
            return cell, "done", time.perf_counter() - t
        except Exception as exc:  # a failed cell must not stop the grid
            detail = exc.args[0] if isinstance(exc, RuntimeError) and exc.args else traceback.format_exc()
            rd.atomic_write_text(run / "error.txt", f"{type(exc).__name__}: {exc}\n\n{detail}")
            return cell, "failed", time.perf_counter() - t
        finally:
            release(run)

    def report(cell: Cell, state: str, seconds: float) -> None:
        nonlocal finished
        finished += 1
        status[state].append(cell.key)
        elapsed = time.perf_counter() - t0
        eta = elapsed / finished * (len(todo) - finished)
        detail = ""
        if state == "done":
            m = rd.read_json(cell.run_dir(root) / rd.METRICS)["test"]
            detail = f" test BA {m['balanced_accuracy']:.3f} F1 {m['macro_f1']:.3f} MCC {m['mcc']:.3f}"
        elif state == "failed":
            detail = f" (see {cell.run_dir(root) / 'error.txt'})"
        log(f"[{finished}/{len(todo)}] {cell.key} {state} in {seconds:.1f}s{detail}; ETA {eta / 60:.1f} min")

    if jobs == 1:
        for cell in todo:
            report(*work(cell))
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for fut in as_completed([pool.submit(work, c) for c in todo]):
                report(*fut.result())
    log(
        f"grid: {len(status['done'])} done, {len(status['failed'])} failed, {len(status['busy'])} busy elsewhere, "
        f"{len(status['skipped'])} skipped, {(time.perf_counter() - t0) / 60:.1f} min"
    )
    return status
