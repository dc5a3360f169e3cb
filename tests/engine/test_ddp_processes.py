"""DDP on CPU as a user starts it: no hang without a launcher, no orphaned rank, one result line."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 200, "size": 12, "class_ratios": [0.7, 0.3]}
TINY = ["--dataset", json.dumps(SYN), "--widen-factor", "0.125", "--epochs", "1", "--accelerator", "cpu"]
LAUNCHER_VARS = (
    "TORCHELASTIC_RUN_ID",
    "GROUP_RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "SLURM_NTASKS",
    "SLURM_JOB_NAME",
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    return dict(env, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")


def _imbal(*args: str) -> list[str]:
    return [sys.executable, "-m", "imbal.cli.main", *args]


def test_num_nodes_without_a_launcher_is_refused_at_once(tmp_path):
    res = subprocess.run(
        _imbal("train", *TINY, "--num-nodes", "2", "--out", str(tmp_path / "r")),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,  # before the fix: waits for the missing node forever
    )
    assert res.returncode == 2, res.stderr[-2000:]
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "num_nodes=2 needs one process per node started by a launcher" in err[0]
    assert "torchrun --nnodes 2 --nproc-per-node 1 --node-rank <0..1>" in err[0]
    assert not (tmp_path / "r").exists()


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_parent_takes_its_ranks_with_it(tmp_path):
    parent = subprocess.Popen(
        _imbal(
            "train", *TINY, "--devices", "2", "--strategy", "ddp", "--quiet", "--out", str(tmp_path / "r")
        ),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        ranks: list[int] = []
        deadline = time.monotonic() + 300
        while not ranks and parent.poll() is None and time.monotonic() < deadline:
            ranks = _children(parent.pid)
            time.sleep(0.05)
        assert ranks, "the parent started no rank"
        os.kill(parent.pid, signal.SIGKILL)  # during start-up, as a user's kill -9 or an OOM kill would
        # a parent that ended on its own before the kill would leave its ranks to end on their own too
        assert parent.wait() == -signal.SIGKILL, "the parent ended before it was killed"
        deadline = time.monotonic() + 300  # a generous bound: the rank needs its imports first
        while any(_alive(r) for r in ranks) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(r) for r in ranks), "a rank outlived its killed parent"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)


def test_the_result_line_is_printed_once(tmp_path):
    # into a file, unbuffered, as a terminal or a job's log gets it (every rank writes there)
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        res = subprocess.run(
            _imbal(
                "train", *TINY, "--devices", "2", "--strategy", "ddp", "--quiet", "--out", str(tmp_path / "r")
            ),
            env=dict(_env(), PYTHONUNBUFFERED="1"),
            stdout=out,
            stderr=err,
            timeout=600,
        )
    assert res.returncode == 0, (tmp_path / "stderr").read_text()[-3000:]
    lines = [line for line in (tmp_path / "stdout").read_text().splitlines() if "best epoch" in line]
    assert len(lines) == 1 and lines[0].startswith(f"{tmp_path / 'r'}: best epoch 1")
