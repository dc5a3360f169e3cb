"""What a cell costs as a scheduler job: submitit's local executor against the grid's warm workers.

The same small grid (2 losses x 3 seeds = 6 cells, 2 epochs on a 600-image synthetic 28x28 RGB set,
ResNet-18 at widen 0.25, 2 threads per cell) runs twice into fresh folders: in-process (``--jobs 1``,
cells forked from the warm server) and with ``--executor local`` (one job at a time,
``array_parallelism: 1``: every cell a new Python process that imports the training stack, then the
orchestrator's poll). Printed per mode: the cells' own training time (``timing.wall_seconds`` of
their metrics.json), the time the grid measured per cell (submission or fork to result), their
medians and the difference per cell (the overhead), and the grid's wall time. Modes alternate over
``--repeats`` rounds so a busy machine slows both alike; medians are over every cell of every round.

    python bench/executor_overhead.py [--repeats 2] [--poll 0.2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from imbal.engine import run_dir as rd
from imbal.study.run import cluster
from imbal.study.run.cluster import ClusterExecutor
from imbal.study.run.grid import run_grid
from imbal.study.run.spec import load_study

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 860, "channels": 3, "class_ratios": [0.6, 0.25, 0.15]}
STUDY = {
    "train": {"dataset": SYN, "epochs": 2, "widen_factor": 0.25, "threads": 2},
    "grid": [{"samplers": ["uniform"], "losses": ["ce", "ce+mcc"]}],
    "seeds": [0, 1, 2],
    "cluster": {"cpus_per_cell": 2, "array_parallelism": 1},
}


def one_grid(mode: str, study: Path, out: Path, poll: float) -> tuple[list[float], list[float], float]:
    spec = load_study(study)
    lines: list[str] = []
    executor = ClusterExecutor("local", spec.cluster, poll=poll) if mode == "local executor" else None
    t = time.perf_counter()
    run_grid(spec, out, executor=executor, log=lines.append, live_every=0)
    wall = time.perf_counter() - t
    measured = [float(line.split(" in ")[1].split("s")[0]) for line in lines if " done in " in line]
    training = [
        rd.read_json(c.run_dir(out) / rd.METRICS_FILE)["timing"]["wall_seconds"] for c in spec.cells()
    ]
    return training, measured, wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--poll", type=float, default=0.2, help="seconds between the orchestrator's looks")
    args = p.parse_args()
    cluster.require_submitit()
    modes = ("warm workers (--jobs 1)", "local executor")
    got: dict[str, dict[str, list[float]]] = {m: {"training": [], "measured": [], "wall": []} for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "study.yaml"
        study.write_text(json.dumps(STUDY))
        for r in range(args.repeats):
            for mode in modes if r % 2 == 0 else modes[::-1]:
                training, measured, wall = one_grid(mode, study, Path(tmp) / f"{r}-{mode[:4]}", args.poll)
                got[mode]["training"] += training
                got[mode]["measured"] += measured
                got[mode]["wall"].append(wall)
    print(f"{len(STUDY['seeds']) * 2} cells per grid, {args.repeats} grid(s) per mode, poll {args.poll} s")
    print(
        "| mode | training per cell (s) | per cell as the grid measured (s) | overhead per cell (s) | grid wall (s) |"
    )
    print("|---|---|---|---|---|")
    for mode in modes:
        g = got[mode]
        t, m = statistics.median(g["training"]), statistics.median(g["measured"])
        print(f"| {mode} | {t:.2f} | {m:.2f} | {m - t:.2f} | {statistics.median(g['wall']):.1f} |")


if __name__ == "__main__":
    main()
