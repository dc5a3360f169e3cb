"""``imbal grid``: run every cell of a study; resumable, parallel on one machine, shardable across many.

Safety: a cell is finished when its ``metrics.json`` exists (written last, atomically), so a killed
grid never reads half a result. A cell being trained holds ``run.lock``, created with its content in
one step (a link), so several shards or ``--jobs`` workers writing into one folder never train the
same cell twice. A lock is taken over only when its holder is gone, atomically (imbal.study.run.locks).
Every cell trains in a fresh process forked
from a warm server that imported the training stack once (:mod:`imbal.study.run.warm`); those processes
die with the grid. A failed cell (an exception, a crash, the out-of-memory killer) writes
``error.txt`` and the grid goes on; the grid exits non-zero when any cell failed or could not be run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from imbal.engine import run_dir as rd
from imbal.engine.config import TrainConfig, read_yaml_mapping
from imbal.errors import ConfigError
from imbal.study.analysis.plan import write_plan
from imbal.study.run.locks import acquire, release
from imbal.study.run.spec import Cell, StudySpec
from imbal.study.run.warm import (
    CellFailed,
    CellStopped,
    Children,
    error_text,
    run_in_child,
    server_ready,
    start_server,
)


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


def shard_cells(cells: list[Cell], shard: tuple[int, int]) -> list[Cell]:
    i, n = shard
    return cells[i::n]


def cell_config(spec: StudySpec, cell: Cell, root: Path, threads: int) -> tuple[TrainConfig, bool]:
    """The cell's config and whether it resumes.

    ``threads`` (cores / jobs) applies unless the study sets ``threads`` itself; a started cell keeps
    its recorded thread count. CPU results depend on the thread count, so an explicit one is kept.
    """
    threads = int(cell.settings.get("threads") or threads)  # a study's explicit threads win over cores/jobs
    run = cell.run_dir(root)
    started = (run / rd.CONFIG).is_file()
    if started:
        stored = read_yaml_mapping(run / rd.CONFIG, "run config")
        threads = int(stored.get("threads") or threads)
    return spec.config_for(cell, root, threads=threads), started


def train_cell(cfg: TrainConfig, resume: bool) -> None:
    """What a cell's process runs, forked from the warm server (which imported the trainer)."""
    # imported here, not by the grid: `imbal grid --help` and the grid process never pay for torch's
    # training stack; the warm server imports it once and every cell inherits it
    from imbal.engine.trainer import train

    train(cfg, resume=resume)


def record_failure(run: Path, exc: Exception) -> str:
    """Write the cell's error.txt (what its process raised or how it died, or what failed here); its path."""
    rd.atomic_write_text(run / rd.ERROR, exc.text if isinstance(exc, CellFailed) else error_text(exc))
    return str(run / rd.ERROR)


class CellState(StrEnum):
    """How a grid left a cell."""

    DONE = "done"  # trained here
    FAILED = "failed"  # raised or died (error.txt says how)
    BUSY = "busy"  # another process holds its lock
    SKIPPED = "skipped"  # finished already
    STOPPED = "stopped"  # by an interrupt: resumable, not failed


@dataclass
class CellOutcome:
    cell: Cell
    state: CellState
    seconds: float = 0.0
    detail: str = ""


class CellExecutor(Protocol):
    """Trains cells somewhere else (scheduler jobs: :class:`imbal.study.run.cluster.ClusterExecutor`)."""

    name: str  # for the grid's lines: "slurm jobs"
    parallelism: int  # cells at once, for the ETA

    def train(
        self,
        spec: StudySpec,
        root: Path,
        cells: list[Cell],
        on_done: Callable[[CellOutcome], None],
    ) -> None:
        """Train every cell (each as a local cell would be: lock, resume, error.txt); report each outcome."""
        ...


def run_cell(
    spec: StudySpec, cell: Cell, root: Path, threads: int, children: Children | None = None
) -> CellOutcome:
    run = cell.run_dir(root)
    busy = acquire(run)
    if busy:
        return CellOutcome(cell, CellState.BUSY, detail=busy)
    t = time.perf_counter()
    try:
        if rd.is_finished(run):  # finished by another process between our check and the lock
            return CellOutcome(cell, CellState.SKIPPED)
        cfg, resume = cell_config(spec, cell, root, threads)
        run_in_child(train_cell, cfg, resume, children=children)
        (run / rd.ERROR).unlink(missing_ok=True)
        return CellOutcome(cell, CellState.DONE, time.perf_counter() - t)
    except KeyboardInterrupt:
        raise
    except CellStopped as exc:  # not a failure: the next run resumes it
        return CellOutcome(cell, CellState.STOPPED, time.perf_counter() - t, str(exc))
    except Exception as exc:  # a failed cell must not stop the grid
        return CellOutcome(cell, CellState.FAILED, time.perf_counter() - t, record_failure(run, exc))
    finally:
        release(run)


# ---------------------------------------------------------------- the grid


@dataclass
class Progress:
    """Counts and timings of one grid invocation; the ETA uses only cells trained here."""

    todo: int
    jobs: int
    log: Callable[[str], None] = print
    started: float = field(default_factory=time.perf_counter)
    outcomes: list[CellOutcome] = field(default_factory=list)
    running: dict[str, tuple[Path, int]] = field(default_factory=dict)  # key -> (run folder, epochs)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def eta_minutes(self) -> float | None:
        trained = [o.seconds for o in self.outcomes if o.state in (CellState.DONE, CellState.FAILED)]
        if not trained:
            return None
        left = self.todo - len(self.outcomes)
        return sum(trained) / len(trained) * left / max(1, min(self.jobs, left or 1)) / 60

    def record(self, o: CellOutcome, root: Path) -> None:
        with self.lock:
            self.outcomes.append(o)
            self.running.pop(o.cell.key, None)
        detail = ""
        if o.state is CellState.DONE:
            # validation only: the test split is the report's, read once for the confirmation
            m = rd.read_json(o.cell.run_dir(root) / rd.METRICS_FILE)["val"]
            detail = f" val BA {m['balanced_accuracy']:.3f} F1 {m['macro_f1']:.3f} MCC {m['mcc']:.3f}"
        elif o.detail:
            detail = f" ({o.detail})"
        eta = self.eta_minutes()
        self.log(
            f"[{len(self.outcomes)}/{self.todo}] {o.cell.key} {o.state} in {o.seconds:.1f}s{detail}"
            + (f"; ETA {eta:.1f} min" if eta is not None else "")
        )

    def live_line(self) -> str | None:
        with self.lock:
            running = dict(self.running)
        if not running:
            return None
        parts = []
        for key, (run, epochs) in running.items():
            done = rd.epochs_done(run)
            parts.append(f"{key} {f'epoch {done}/{epochs}' if done else 'starting'}")
        eta = self.eta_minutes()
        return f"  running: {'; '.join(parts)}" + (f"; ETA {eta:.1f} min" if eta is not None else "")


def _monitor(progress: Progress, stop: threading.Event, every: float) -> None:
    last = None
    while not stop.wait(every):
        line = progress.live_line()
        if line and line != last:
            progress.log(line)
            last = line


def warn_changed_settings(spec: StudySpec, cells: list[Cell], root: Path, log: Callable[[str], None]) -> None:
    """Finished cells keep their results; say when they were trained with other settings."""
    changed: dict[str, set[str]] = {}
    for cell in cells:
        run = cell.run_dir(root)
        if rd.is_finished(run):
            diff = spec.changed_settings(cell, rd.read_json(run / rd.METRICS_FILE).get("config", {}), root)
            if diff:
                changed[cell.key] = set(diff)
    if changed:
        keys = sorted(set().union(*changed.values()))
        log(
            f"grid: warning: {len(changed)} finished cell(s) were trained with other settings ({', '.join(keys)}); "
            "their results are kept. Use another --out to train them with the new settings."
        )


def _train_cells(
    spec: StudySpec, root: Path, todo: list[Cell], jobs: int, log: Callable[[str], None], live_every: float
) -> Progress:
    """Train ``todo`` with ``jobs`` cells at once (cores / jobs threads each), a live line every ``live_every`` s."""
    threads = max(1, (os.cpu_count() or 1) // max(jobs, 1))
    progress = Progress(len(todo), jobs, log)
    children = Children()
    stop = threading.Event()
    if live_every > 0:
        threading.Thread(target=_monitor, args=(progress, stop, live_every), daemon=True).start()

    def start(cell: Cell) -> CellOutcome:
        with progress.lock:
            progress.running[cell.key] = (cell.run_dir(root), int(spec.config_for(cell, root).epochs))
        return run_cell(spec, cell, root, threads, children)

    try:
        if jobs == 1:
            for cell in todo:
                progress.record(start(cell), root)
        else:
            _in_pool(todo, jobs, start, children, lambda o: progress.record(o, root))
    except KeyboardInterrupt:
        children.stop_all()
        stopped = list(progress.running)
        log(
            f"grid: interrupted: {len(stopped)} running cell(s) stopped ({', '.join(stopped) or 'none'}; they resume "
            f"from their last checkpoint), {len(todo) - len(progress.outcomes) - len(progress.running)} not "
            "started; nothing is marked failed"
        )
        raise
    finally:
        stop.set()
    return progress


def _in_pool(
    todo: list[Cell],
    jobs: int,
    start: Callable[[Cell], CellOutcome],
    children: Children,
    record: Callable[[CellOutcome], None],
) -> None:
    """``start`` every cell on ``jobs`` threads; on an interrupt no queued cell starts and the running ones stop."""
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        for fut in as_completed([pool.submit(start, c) for c in todo]):
            record(fut.result())
    except KeyboardInterrupt:
        children.stop_all()
        pool.shutdown(
            wait=True, cancel_futures=True
        )  # the running cells return at once: their process is gone
        raise
    finally:
        pool.shutdown(wait=True)


def _on_executor(
    executor: CellExecutor, spec: StudySpec, root: Path, todo: list[Cell], log: Callable[[str], None]
) -> Progress:
    progress = Progress(len(todo), executor.parallelism, log)
    executor.train(spec, root, todo, lambda o: progress.record(o, root))
    return progress


def run_grid(
    spec: StudySpec,
    root: str | Path,
    *,
    jobs: int = 1,
    shard: tuple[int, int] = (0, 1),
    cells: list[Cell] | None = None,
    log: Callable[[str], None] = print,
    live_every: float = 30.0,
    executor: CellExecutor | None = None,
) -> dict[str, list[str]]:
    """Run the cells of this shard that are not finished; return which finished, failed, were busy or skipped.

    ``cells`` restricts the grid to a subset of ``spec.cells()`` (benchmarks run a fraction).
    ``live_every`` seconds, a line shows the running cells' epochs (0 = never). ``executor``: the
    cells are its jobs (``--executor``) instead of forks of this machine's warm server.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    write_plan(root, spec.plan)  # the analysis is fixed before the first cell trains
    cells = shard_cells(spec.cells() if cells is None else cells, shard)
    todo = [c for c in cells if not rd.is_finished(c.run_dir(root))]
    if todo and executor is None:
        start_server()  # it imports the training stack while the finished cells are checked
    warn_changed_settings(spec, cells, root, log)
    status: dict[str, list[str]] = {state: [] for state in CellState}
    status[CellState.SKIPPED] = [c.key for c in cells if c not in todo]
    log(
        f"grid: {len(cells)} cells in shard {shard[0]}/{shard[1]}, {len(status['skipped'])} already finished, "
        f"{len(todo)} to run " + (f"as {executor.name}" if executor else f"with {jobs} job(s)")
    )
    if todo and executor is None:  # cells' times and the ETA should not include the server's imports
        waited = server_ready()
        log(
            f"grid: warm server ready in {waited:.1f}s (it imports the training stack once; cells are forks of it)"
        )
    if executor is None:
        progress = _train_cells(spec, root, todo, jobs, log, live_every)
    else:
        progress = _on_executor(executor, spec, root, todo, log)
    for o in progress.outcomes:
        status[o.state].append(o.cell.key)
    log(
        f"grid: {len(status['done'])} done, {len(status['failed'])} failed, {len(status['busy'])} busy elsewhere, "
        f"{len(status['skipped'])} skipped, {(time.perf_counter() - progress.started) / 60:.1f} min"
    )
    return status
