"""What a study pays besides training: per-cell process start-up, and the CLI's start-up.

A grid of small RetinaMNIST cells (2 samplers x 2 losses x 2 seeds = 8; 2 epochs on 600 training
images, widen_factor 0.25) runs at --jobs 1 and --jobs 2. Printed per run: the sum of the cells'
own training time (``timing.wall_seconds`` of their metrics.json), the span from the first cell's
start to the last cell's end (a cell starts when the grid takes it up, lock and config included),
and their ratio: span / training at --jobs 1, span / (training / 2) at --jobs 2 (targets of issue
22: <= 1.05 and <= 1.1); "per cell" is what a job slot spends on a cell besides training it. The
one-time set-up before the first cell (the warm server's imports; the old code's in-process import
at --jobs 1) is printed apart, and with the grid's wall time.

``--before REF`` measures the code of a git commit too, in the same invocation (its ``src`` is
exported to a temporary folder; this script measures both through the grid API they share), so
before and after see the same machine load. Start-up: median wall time of ``imbal --help``,
``imbal data list`` and ``imbal train --help`` over ``--repeat`` runs, with ``python -c pass`` as the
floor, and the cumulative ``python -X importtime`` of the heavy packages.

    IMBAL_DATA=... python bench/study_overhead.py --before 9c5d843 [--results]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUDY = {
    "train": {"dataset": "retinamnist", "train_subset": 600, "epochs": 2, "widen_factor": 0.25},
    "grid": [{"samplers": ["uniform", "oversample"], "losses": ["ce", "ce+mcc"]}],
    "seeds": [0, 1],
}
COMMANDS = {
    "imbal --help": ["--help"],
    "imbal data list": ["data", "list"],
    "imbal train --help": ["train", "--help"],
}
TRAINING_STACK = "import imbal.engine.trainer, imbal.data, imbal.models"  # the measurement
IMPORTS = {"imbal --help": ["-m", "imbal.cli.main", "--help"], TRAINING_STACK: ["-c", TRAINING_STACK]}
HEAVY = (
    "torch",
    "lightning_fabric",
    "torch._dynamo",
    "scipy.signal",
    "matplotlib",
    "sympy",
    "monai",
    "pandas",
    "sklearn",
)


# ---------------------------------------------------------------- one grid, in a process of its own


def warm_up(jobs: int) -> float:
    """The one-time set-up before the first cell, timed: the warm server (new) or the trainer's import
    (old code, whose --jobs 1 trains in this process; its --jobs 2 cells import for themselves)."""
    t = time.perf_counter()
    try:
        from imbal.study.run.warm import run_in_child, start_server
    except ImportError:  # the old code
        if jobs == 1:
            import imbal.engine.trainer  # noqa: F401
        return time.perf_counter() - t
    start_server()
    run_in_child(os.getpid)  # returns once the server has imported everything and forked
    return time.perf_counter() - t


def measure_grid(jobs: int, out: Path) -> dict:
    import yaml

    from imbal.engine import run_dir as rd
    from imbal.study.run import grid
    from imbal.study.run.spec import load_study

    out.mkdir(parents=True)
    (out / "study.yaml").write_text(yaml.safe_dump(STUDY))
    spec = load_study(out / "study.yaml")
    setup = warm_up(jobs)
    spans: list[tuple[float, float]] = []
    run_cell = grid.run_cell

    def timed(*args, **kwargs):
        t = time.perf_counter()
        try:
            return run_cell(*args, **kwargs)
        finally:
            spans.append((t, time.perf_counter()))

    grid.run_cell = timed  # both old and new grids call grid.run_cell once per cell
    t = time.perf_counter()
    status = grid.run_grid(spec, out / "s", jobs=jobs, log=lambda *_: None, live_every=0)
    wall = time.perf_counter() - t
    if len(status["done"]) != len(spec.cells()):
        raise SystemExit(f"cells failed: {status}")
    train = sum(
        json.loads((cell / rd.METRICS_FILE).read_text())["timing"]["wall_seconds"]
        for cell in rd.cell_dirs(out / "s")
    )
    span = max(e for _, e in spans) - min(s for s, _ in spans)
    return {"jobs": jobs, "cells": len(spans), "train": train, "span": span, "setup": setup, "wall": wall}


# ---------------------------------------------------------------- the orchestrator


def export_tree(ref: str, into: Path) -> Path:
    """``src`` of a commit, for PYTHONPATH."""
    blob = subprocess.run(["git", "archive", ref, "src"], cwd=REPO, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def env_for(src: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(src), PYTHONWARNINGS="ignore")


def run_variant_grid(src: Path, jobs: int, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--measure-grid", str(jobs), "--out", str(out)]
    res = subprocess.run(cmd, env=env_for(src), capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def median_seconds(cmd: list[str], env: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def import_times(src: Path, args: list[str]) -> dict[str, float]:
    """Cumulative seconds per module of ``python -X importtime ARGS`` (a module's own import and what
    it imported first), plus ``total``: the sum over the top-level imports."""
    res = subprocess.run(
        [sys.executable, "-X", "importtime", *args], env=env_for(src), capture_output=True, text=True
    )
    times = {"total": 0.0}
    for line in res.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            times.setdefault(name.strip(), int(cumulative) / 1e6)
            if not name[1:].startswith(" "):  # depth 0
                times["total"] += int(cumulative) / 1e6
    return times


def ratio(r: dict) -> float:
    return r["span"] / (r["train"] / r["jobs"])


def per_cell(r: dict) -> float:
    """What a job slot spends on a cell besides its training: (jobs x span - training) / cells."""
    return (r["jobs"] * r["span"] - r["train"]) / r["cells"]


def report(grids: list[dict], startup: dict, imports: dict, load: tuple[str, str]) -> str:
    lines = [
        f"Machine load (/proc/loadavg, 1/5/15 min) at the start: {load[0]}; at the end: {load[1]}.",
        "",
        "| code | jobs | cells | training (sum, s) | span (s) | ratio | target | per cell (s) "
        "| one-time set-up (s) | set-up + grid wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in grids:
        target = 1.05 if r["jobs"] == 1 else 1.1
        lines.append(
            f"| {r['variant']} | {r['jobs']} | {r['cells']} | {r['train']:.1f} | {r['span']:.1f} | "
            f"{ratio(r):.2f} | <= {target} | {per_cell(r):.2f} | {r['setup']:.1f} | {r['setup'] + r['wall']:.1f} |"
        )
    lines += ["", "| command | " + " | ".join(startup) + " |", "|---|" + "---|" * len(startup)]
    for name in [*COMMANDS, "python -c pass"]:
        lines.append(f"| `{name}` | " + " | ".join(f"{startup[v][name]:.2f} s" for v in startup) + " |")
    for what in IMPORTS:
        lines += ["", f"`python -X importtime` of `{what}`: cumulative seconds ('-': not imported by it)", ""]
        lines += ["| module | " + " | ".join(imports) + " |", "|---|" + "---|" * len(imports)]
        for module in ("total", *HEAVY):
            cells = [f"{t[what][module]:.2f}" if module in t[what] else "-" for t in imports.values()]
            lines.append(f"| {module} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", metavar="REF", help="also measure this git commit's code")
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=5, help="runs per start-up command (median)")
    p.add_argument("--results", action="store_true", help="append the section to bench/RESULTS.md")
    p.add_argument("--measure-grid", type=int, metavar="JOBS", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.measure_grid:
        print(json.dumps(measure_grid(args.measure_grid, args.out)))
        return 0
    if not os.environ.get("IMBAL_DATA"):
        print("note: IMBAL_DATA is not set; RetinaMNIST is looked up in the cache (or downloaded)")
    load_start = Path("/proc/loadavg").read_text().split()[:3]
    with tempfile.TemporaryDirectory() as tmp:
        variants = {"after": REPO / "src"}
        if args.before:
            variants = {f"before ({args.before})": export_tree(args.before, Path(tmp) / "before"), **variants}
        grids = []
        for jobs in args.jobs:  # variants alternate, so that both see the same drift in load
            for name, src in variants.items():
                r = run_variant_grid(src, jobs, Path(tmp) / f"grid-{len(grids)}")
                grids.append({"variant": name, **r})
                print(
                    f"{name} --jobs {jobs}: training {r['train']:.1f} s, span {r['span']:.1f} s, ratio {ratio(r):.2f}"
                )
        startup: dict[str, dict[str, float]] = {}
        imports: dict[str, dict[str, dict[str, float]]] = {}
        for name, src in variants.items():
            env = env_for(src)
            startup[name] = {
                cmd: median_seconds([sys.executable, "-m", "imbal.cli.main", *a], env, args.repeat)
                for cmd, a in COMMANDS.items()
            }
            startup[name]["python -c pass"] = median_seconds([sys.executable, "-c", "pass"], env, args.repeat)
            imports[name] = {what: import_times(src, a) for what, a in IMPORTS.items()}
    load_end = Path("/proc/loadavg").read_text().split()[:3]
    text = report(grids, startup, imports, (" ".join(load_start), " ".join(load_end)))
    print(text)
    if args.results:
        day = datetime.date.today().isoformat()
        head = (
            f"\n## Study overhead (`python bench/study_overhead.py --before {args.before}`, {day}, CPU)\n\n"
        )
        with open(REPO / "bench" / "RESULTS.md", "a") as f:
            f.write(head + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
