"""Cells as scheduler jobs: ``--executor slurm|local`` through submitit (docs/method.md, "Running a study").

The orchestrating process (``imbal grid`` or ``imbal recommend``) submits the cells it needs as one
batch (a SLURM job array; the local executor runs real subprocesses, ``array_parallelism`` at a time)
and waits. A job runs :class:`CellJob`: the same lock, resume and failure record as a local cell,
trained in the job's own process. A job that SLURM preempts or times out is checkpointed by submitit
(``CellJob.checkpoint``) and requeued; the cell resumes from its last epoch checkpoint.

Nothing is submitted twice. Every submission is recorded in ``.cluster/jobs.json`` (cell key ->
job id, executor, log paths) before the orchestrator waits. A rerun of the orchestrator adopts each
recorded job that is still pending or running instead of submitting its cell again; a job that
ended without its cell's ``metrics.json`` marks the cell failed (``error.txt`` names the job and its
log) and a rerun submits it again, resuming from its checkpoint. A job killed on another host
cannot release its cell's lock, and no process there can judge it dead (imbal.study.run.locks): the
orchestrator, which the scheduler tells that the job ended, removes a lock whose holder is the one
that job recorded when it started.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imbal.engine import run_dir as rd
from imbal.errors import ConfigError
from imbal.naming import EXECUTORS
from imbal.processes import pid_alive
from imbal.study.run.grid import CellOutcome, CellState, cell_config, record_failure, train_cell
from imbal.study.run.locks import acquire, lock_holder, release
from imbal.study.run.spec import Cell, ClusterSettings, StudySpec

FOLDER = ".cluster"  # in the study folder: submitit's files and logs, the job record
JOBS_FILE = "jobs.json"
STARTED = "started"  # one file per cell: "<host> <pid> <job id>" of the job process training it
POLL_SECONDS = float(os.environ.get("IMBAL_CLUSTER_POLL", 10.0))
# sacct's states after which a SLURM job never runs again ("CANCELLED by <uid>" starts with CANCELLED);
# any other, UNKNOWN (accounting off or down) included, counts as queued or running: never submit twice
ENDED_SLURM = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "BOOT_FAIL",
    "DEADLINE",
    "REVOKED",
}


def require_submitit() -> Any:
    """The submitit module, or a one-line user error naming the extra to install."""
    try:
        import submitit
    except ImportError:
        raise ConfigError(
            "--executor needs submitit, which is not installed: pip install 'imbal[cluster]'"
        ) from None
    return submitit


@dataclass
class ClusterExecutor:
    """``--executor local|slurm``: a grid's cells as submitit jobs, with the study's ``cluster:`` settings."""

    kind: str
    settings: ClusterSettings
    poll: float | None = None  # seconds between the orchestrator's looks at its jobs (None: POLL_SECONDS)

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {self.kind!r}")
        require_submitit()  # said before anything is trained

    @property
    def name(self) -> str:
        return f"{self.kind} jobs (submitit)"

    @property
    def parallelism(self) -> int:
        return self.settings.array_parallelism

    def train(
        self, spec: StudySpec, root: Path, cells: list[Cell], on_done: Callable[[CellOutcome], None]
    ) -> None:
        """Submit (or adopt) a job per cell and wait for them all (:func:`train_on_executor`)."""
        poll = POLL_SECONDS if self.poll is None else self.poll
        train_on_executor(spec, root, cells, self.kind, self.settings, on_done, poll)


# ---------------------------------------------------------------- in the job


class CellJob:
    """What a cell's job runs: lock, train (resuming), record a failure; checkpointable for requeueing."""

    def __init__(self, spec: StudySpec, root: str, cell: Cell, threads: int) -> None:
        self.spec, self.root, self.cell, self.threads = spec, root, cell, threads

    def __call__(self) -> str:
        root = Path(self.root)
        run = self.cell.run_dir(root)
        busy = acquire(run)
        if busy:
            return f"busy: {busy}"
        try:
            if rd.is_finished(run):
                return "skipped"
            _write_started(root, self.cell)
            cfg, resume = cell_config(self.spec, self.cell, root, self.threads)
            try:
                train_cell(cfg, resume)
            except Exception as exc:
                record_failure(run, exc)
                raise
            (run / rd.ERROR).unlink(missing_ok=True)
            return "done"
        finally:
            release(run)

    def checkpoint(self) -> Any:
        """Preempted or out of time: submitit requeues the same cell, which resumes from its checkpoint."""
        import submitit

        return submitit.helpers.DelayedSubmission(CellJob(self.spec, self.root, self.cell, self.threads))


def _started_file(root: Path, cell: Cell) -> Path:
    return root / FOLDER / STARTED / cell.key.replace("/", "__")


def job_id_here() -> str:
    """This job's id as submitit names it: ``<array>_<task>`` in a SLURM array, else the job or local id."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID", "")


def _write_started(root: Path, cell: Cell) -> None:
    job = job_id_here()
    path = _started_file(root, cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    rd.atomic_write_text(path, f"{socket.gethostname()} {os.getpid()} {job}\n")


# ---------------------------------------------------------------- the orchestrator


@dataclass
class Submitted:
    """One cell's job as the record keeps it."""

    cell: Cell
    job_id: str
    executor: str
    stdout: str
    stderr: str
    job: Any = None  # submitit's job object, when this process submitted it
    submitted_at: float = 0.0  # time.time() of the submission, when this process submitted it

    def record(self) -> dict[str, str]:
        return {
            "job_id": self.job_id,
            "executor": self.executor,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "submitted_at": repr(self.submitted_at),
        }

    @classmethod
    def from_record(cls, cell: Cell, entry: dict[str, str]) -> Submitted:
        """A job an earlier orchestrator recorded (no job object yet)."""
        return cls(
            cell,
            str(entry["job_id"]),
            str(entry["executor"]),
            str(entry["stdout"]),
            str(entry["stderr"]),
            submitted_at=float(entry.get("submitted_at", 0.0)),
        )


def read_record(root: Path) -> dict[str, dict[str, str]]:
    path = root / FOLDER / JOBS_FILE
    return rd.read_json(path) if path.is_file() else {}


def _write_record(root: Path, submitted: list[Submitted]) -> None:
    record = read_record(root)
    for s in submitted:
        record.setdefault(s.cell.key, {}).update(s.record())
        record[s.cell.key]["submissions"] = str(int(record[s.cell.key].get("submissions", "0")) + 1)
    rd.atomic_write_text(root / FOLDER / JOBS_FILE, json.dumps(record, indent=1, sort_keys=True) + "\n")


def _squeue_ended(job_id: str) -> bool:
    """squeue's word when sacct has none: a job it does not list (or no longer knows) has ended."""
    try:
        out = subprocess.run(
            ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return False  # no answer at all: it may run
    if out.returncode != 0:
        return "invalid job id" in out.stderr.lower()
    return not out.stdout.strip()


def _slurm_ended(job: Any) -> bool:
    words = str(job.state).upper().split()
    state = words[0] if words else "UNKNOWN"
    if state in ENDED_SLURM:
        return True
    return state == "UNKNOWN" and _squeue_ended(str(job.job_id))


def _active(sub: Submitted, submitit: Any, folder: Path) -> bool:
    """Whether a job may still run: only a definite end (the scheduler's, or a dead local job) says no."""
    if sub.executor == "local":
        return not sub.job.done() if sub.job is not None else pid_alive(int(sub.job_id))
    if sub.job is None:  # recorded by an earlier orchestrator: one object per job (each one polls sacct)
        sub.job = submitit.SlurmJob(folder / "%j", sub.job_id)
    # not job.done(): submitit calls a SUSPENDED job done, and its lock must not be freed
    return not _slurm_ended(sub.job)


def _free_or_busy(root: Path, cell: Cell, entry: dict[str, str] | None) -> str:
    """'' when the cell can be submitted (its lock free, or left by its own recorded job that has ended);
    else who holds it: a job is never submitted only to find the cell busy again."""
    run = cell.run_dir(root)
    holder = lock_holder(run / rd.LOCK)
    if holder is None:
        return ""
    host, pid = holder
    if host == socket.gethostname() and not pid_alive(pid):
        return ""  # the job's own acquire takes over a dead holder of this host
    started = _started_file(root, cell)
    if entry and started.is_file() and _started_by(started) == (host, pid, str(entry["job_id"])):
        release(run)  # held by the recorded job, which the scheduler says has ended
        return ""
    return f"{run / rd.LOCK} is held by process {pid} on {host}"


def _started_by(path: Path) -> tuple[str, int, str] | None:
    parts = path.read_text().split()
    try:
        return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""
    except (IndexError, ValueError):
        return None


def _executor(submitit: Any, kind: str, folder: Path, settings: ClusterSettings) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "local":
        executor = submitit.LocalExecutor(folder=folder / "%j")
    else:
        executor = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm")
    executor.update_parameters(**settings.parameters(kind))
    return executor


def layout(cells: list[Cell], kind: str, settings: ClusterSettings, root: Path) -> str:
    """What ``--dry-run`` prints: the array a batch of cells becomes."""
    params = settings.parameters(kind)
    rows = [
        f"{kind} job array: {len(cells)} job(s), one cell each, at most {settings.array_parallelism} at once"
    ]
    rows.append("each job: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    rows.append(f"logs and job record: {root / FOLDER}/")
    rows += [f"  [{i}] {c.key}" for i, c in enumerate(cells)]
    return "\n".join(rows)


def train_on_executor(
    spec: StudySpec,
    root: Path,
    cells: list[Cell],
    kind: str,
    settings: ClusterSettings,
    on_done: Callable[[CellOutcome], None],
    poll: float = POLL_SECONDS,
) -> None:
    """Submit (or adopt) a job for every unfinished cell and wait for them all, reporting each outcome."""
    submitit = require_submitit()
    folder = root / FOLDER / "logs"
    record = read_record(root)
    threads = max(1, settings.cpus_per_cell)
    adopted: list[Submitted] = []
    to_submit: list[Cell] = []
    for cell in cells:
        entry = record.get(cell.key)
        sub = Submitted.from_record(cell, entry) if entry else None
        if sub is not None and _active(sub, submitit, folder):
            adopted.append(sub)
            continue
        busy = _free_or_busy(root, cell, entry)
        if (
            busy
        ):  # another process (a job of another orchestrator, a local grid) trains it: wait, not resubmit
            on_done(CellOutcome(cell, CellState.BUSY, 0.0, busy))
        else:
            to_submit.append(cell)
    executor = _executor(submitit, kind, folder, settings)
    waiting = list(adopted)
    started = {id(s): time.perf_counter() for s in adopted}
    queue = list(to_submit)
    window = len(queue) if kind == "slurm" else settings.array_parallelism  # the local executor has no queue
    try:
        while queue or waiting:
            room = window - len(waiting)
            batch, queue = queue[: max(room, 0)], queue[max(room, 0) :]
            if batch:
                fresh = _submit(executor, spec, root, batch, threads, kind)
                _write_record(
                    root, fresh
                )  # recorded before waiting: a killed orchestrator never submits twice
                for s in fresh:
                    started[id(s)] = time.perf_counter()
                waiting += fresh
            for sub in [s for s in waiting if not _active(s, submitit, folder)]:
                waiting.remove(sub)
                state, detail = _settle(root, sub)
                on_done(CellOutcome(sub.cell, state, time.perf_counter() - started[id(sub)], detail))
            if waiting:
                time.sleep(poll)
    except KeyboardInterrupt:
        for s in waiting:  # the scheduler's jobs are cancelled with the orchestrator, and resume on a rerun
            if s.job is not None:
                s.job.cancel(check=False)
        raise


def _submit(
    executor: Any, spec: StudySpec, root: Path, cells: list[Cell], threads: int, kind: str
) -> list[Submitted]:
    jobs = []
    with executor.batch():
        for cell in cells:
            jobs.append(executor.submit(CellJob(spec, str(root), cell, threads)))
    return [
        Submitted(cell, str(job.job_id), kind, str(job.paths.stdout), str(job.paths.stderr), job, time.time())
        for cell, job in zip(cells, jobs)
    ]


def _settle(root: Path, sub: Submitted) -> tuple[CellState, str]:
    """A finished job's cell: done, busy elsewhere, or failed with the job's log named (its lock freed)."""
    run = sub.cell.run_dir(root)
    if rd.is_finished(run):
        return CellState.DONE, ""
    said = _result(sub)
    if said.startswith("busy"):
        return CellState.BUSY, said
    holder = lock_holder(run / rd.LOCK)
    started = _started_file(root, sub.cell)
    if holder and started.is_file() and _started_by(started) == (*holder, sub.job_id):
        release(run)  # held by this job, which the scheduler says has ended: stale on any host
    error = run / rd.ERROR
    log = f"{sub.executor} job {sub.job_id}, log {sub.stderr}"
    if error.is_file() and sub.submitted_at and error.stat().st_mtime >= sub.submitted_at:
        rd.atomic_write_text(error, error.read_text() + f"\n({log})\n")  # the cell raised: its own record
    else:  # killed, out of memory or out of time: only the scheduler's log knows
        rd.atomic_write_text(error, f"CellDied: {log}: the job ended without finishing the cell\n")
    return CellState.FAILED, str(error)


def _result(sub: Submitted) -> str:
    """What the job's :class:`CellJob` returned ('' when it raised, died, or is a local job of an earlier run)."""
    if sub.job is None:
        return ""
    try:
        return str(sub.job.result())
    except Exception:
        return ""
