"""Cells as scheduler jobs (run/cluster.py) through submitit's local executor, the code path of SLURM:
a grid, a job killed mid-cell, an orchestrator rerun that submits nothing twice, and bad settings."""

import json
import os
import signal
import sys
import threading

import pytest
import torch
import yaml

from imbal.cli.main import main
from imbal.engine import run_dir as rd
from imbal.study.run import cluster
from imbal.study.run.cluster import ClusterExecutor, read_record
from imbal.study.run.grid import run_grid
from imbal.study.run.spec import ClusterSettings, load_study
from tests.study.run.test_grid_interrupt import wait_for

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 200, "size": 12, "class_ratios": [0.7, 0.3]}
TRAIN = {"dataset": SYN, "widen_factor": 0.125, "epochs": 1}
CLUSTER = {"cpus_per_cell": 1, "array_parallelism": 2}


def study(tmp_path, train=TRAIN, losses=("ce", "mcc"), seeds=(0, 1), **kw):
    data = {"train": train, "grid": [{"samplers": ["uniform"], "losses": list(losses)}], "seeds": list(seeds)}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**data, "cluster": CLUSTER, **kw}))
    return path


def test_a_grid_runs_as_local_jobs_records_them_and_a_rerun_submits_nothing(tmp_path):
    spec, root, lines = load_study(study(tmp_path)), tmp_path / "s", []
    status = run_grid(spec, root, executor=ClusterExecutor("local", spec.cluster, poll=0.2), log=lines.append)
    keys = [c.key for c in spec.cells()]
    assert sorted(status["done"]) == sorted(keys) and not status["failed"]
    assert "4 to run as local jobs (submitit)" in lines[0]
    record = read_record(root)
    assert sorted(record) == sorted(keys) and {r["submissions"] for r in record.values()} == {"1"}
    for key, entry in record.items():
        assert os.path.isfile(entry["stdout"]) and entry["executor"] == "local"
        m = json.loads((root / "runs" / key / rd.METRICS_FILE).read_text())
        assert m["config"]["threads"] == 1  # cpus_per_cell
    again = run_grid(spec, root, executor=ClusterExecutor("local", spec.cluster, poll=0.2), log=lines.append)
    assert sorted(again["skipped"]) == sorted(keys) and read_record(root) == record


def test_a_job_killed_mid_cell_is_failed_with_its_log_and_a_rerun_resumes(tmp_path):
    epochs = 40  # about 0.1 s each: the job is killed well before its end
    train = {**TRAIN, "epochs": epochs, "checkpoint_every": 1, "batch_size": 20}
    spec = load_study(study(tmp_path, train=train, losses=["ce"], seeds=[0]))
    root, (cell,) = tmp_path / "s", spec.cells()
    run, result = cell.run_dir(root), {}
    started = root / cluster.FOLDER / cluster.STARTED / cell.key.replace("/", "__")
    executor = ClusterExecutor("local", spec.cluster, poll=0.1)
    grid = threading.Thread(target=lambda: result.update(run_grid(spec, root, executor=executor, log=print)))
    grid.start()
    assert wait_for(lambda: (run / rd.LAST).is_file() and started.is_file(), 120)
    pid = int(started.read_text().split()[1])
    os.kill(pid, signal.SIGKILL)  # what the out-of-memory killer or a node failure does
    grid.join(60)
    assert result["failed"] == [cell.key] and not rd.is_finished(run)
    job = read_record(root)[cell.key]
    assert (
        (run / rd.ERROR).read_text().startswith(f"CellDied: local job {job['job_id']}, log {job['stderr']}")
    )
    assert not (run / rd.LOCK).exists()  # the ended job's lock is freed by the orchestrator
    saved = torch.load(run / rd.LAST, weights_only=True)["state"]["epoch"]
    lines_before = len((run / rd.LOG).read_text().splitlines())
    again = run_grid(spec, root, executor=executor, log=print)
    assert again["done"] == [cell.key] and not (run / rd.ERROR).exists()
    assert read_record(root)[cell.key]["submissions"] == "2"
    log = (run / rd.LOG).read_text().splitlines()
    assert 1 <= saved < epochs and log[lines_before].startswith(f"epoch {saved + 1}/{epochs}")  # continued
    assert log[-1].startswith(f"epoch {epochs}/{epochs}")


def test_without_submitit_the_executor_is_one_line_and_trains_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit raises ImportError
    path = study(tmp_path)
    for command in ("grid", "recommend"):
        assert (
            main([command, "--config", str(path), "--out", str(tmp_path / command), "--executor", "local"])
            == 2
        )
        err = capsys.readouterr().err.strip()
        assert (
            err
            == "imbal: error: --executor needs submitit, which is not installed: pip install 'imbal[cluster]'"
        )
        assert not (tmp_path / command / "runs").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--shard", "0/2"], "--executor and --shard exclude each other"),
        (["--jobs", "2"], "with --executor, the study's cluster.array_parallelism sets"),
    ],
)
def test_executor_options_that_conflict_are_refused(tmp_path, capsys, args, message):
    path = study(tmp_path)
    assert (
        main(["grid", "--config", str(path), "--out", str(tmp_path / "s"), "--executor", "local", *args]) == 2
    )
    assert message in capsys.readouterr().err


def test_dry_run_prints_the_job_array_of_the_unfinished_cells(tmp_path, capsys):
    path = study(
        tmp_path, cluster={"partition": "gpu", "gpus_per_cell": 1, "time_min": 90, "array_parallelism": 3}
    )
    assert (
        main(
            ["grid", "--config", str(path), "--out", str(tmp_path / "s"), "--executor", "slurm", "--dry-run"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("slurm job array: 4 job(s), one cell each, at most 3 at once\n")
    assert "timeout_min=90, gpus_per_node=1" in out and "slurm_partition=gpu" in out
    assert "  [3] synthetic/uniform/mcc/seed1" in out and not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "raw,message",
    [
        ("gpu", "cluster in s.yaml must be a mapping"),
        ({"queue": "gpu"}, r"cluster in s.yaml has unknown keys \['queue'\]"),
        ({"time_min": 0}, "cluster.time_min in s.yaml must be an integer >= 1, got 0"),
        ({"gpus_per_cell": -1}, "cluster.gpus_per_cell in s.yaml must be an integer >= 0"),
        ({"mem_gb": "lots"}, "cluster.mem_gb in s.yaml must be a number > 0"),
    ],
)
def test_bad_cluster_settings_name_the_key(raw, message):
    from imbal.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        ClusterSettings.from_mapping(raw, "s.yaml")


@pytest.mark.parametrize(
    "state,squeue_says_ended,active",
    [
        ("PENDING", None, True),
        ("RUNNING", None, True),
        ("REQUEUED", None, True),
        ("PREEMPTED", None, True),  # submitit requeues it
        ("SUSPENDED", None, True),  # submitit calls it done; its lock must not be freed
        ("COMPLETED", None, False),
        ("CANCELLED by 1234", None, False),
        ("OUT_OF_MEMORY", None, False),
        ("UNKNOWN", False, True),  # sacct has no answer (accounting off or down), nor squeue: may run
        ("UNKNOWN", True, False),  # squeue no longer lists it
    ],
)
def test_a_recorded_slurm_job_counts_as_running_until_the_scheduler_says_it_ended(
    tmp_path, monkeypatch, state, squeue_says_ended, active
):
    made = []

    class SlurmJob:  # submitit's view of a job an earlier orchestrator submitted (sacct never raises)
        def __init__(self, folder, job_id):
            self.job_id, self.state = job_id, state
            made.append(folder)

    monkeypatch.setattr(cluster, "_squeue_ended", lambda job_id: squeue_says_ended)
    fake = type("submitit", (), {"SlurmJob": SlurmJob})
    (cell,) = load_study(study(tmp_path, losses=["ce"], seeds=[0])).cells()
    sub = cluster.Submitted(cell, "4242_3", "slurm", "out.log", "err.log")
    assert cluster._active(sub, fake, tmp_path) is active
    assert (
        cluster._active(sub, fake, tmp_path) is active and len(made) == 1
    )  # one object per job, not per poll


def test_a_lock_left_by_its_ended_job_is_freed_and_a_live_foreign_one_is_waited_for(tmp_path):
    spec = load_study(study(tmp_path, losses=["ce"], seeds=[0, 1]))
    root, (stale, live) = tmp_path / "s", spec.cells()
    for cell, who in ((stale, "node7 4321"), (live, "node8 99")):
        cell.run_dir(root).mkdir(parents=True)
        (cell.run_dir(root) / rd.LOCK).write_text(f"{who}\n")
    # the stale one: its recorded (local) job 999999 is gone, and the lock is that job's (started file)
    started = root / cluster.FOLDER / cluster.STARTED / stale.key.replace("/", "__")
    started.parent.mkdir(parents=True)
    started.write_text("node7 4321 999999\n")
    record = {
        stale.key: {"job_id": "999999", "executor": "local", "stdout": "o", "stderr": "e", "submissions": "1"}
    }
    (root / cluster.FOLDER / cluster.JOBS_FILE).write_text(json.dumps(record))
    status = run_grid(spec, root, executor=ClusterExecutor("local", spec.cluster, poll=0.2), log=print)
    assert status["done"] == [stale.key] and read_record(root)[stale.key]["submissions"] == "2"
    assert status["busy"] == [live.key] and live.key not in read_record(root)  # not submitted to find it busy
    assert (live.run_dir(root) / rd.LOCK).read_text() == "node8 99\n"
