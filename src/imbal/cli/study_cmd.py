"""``imbal grid``, ``imbal report`` and ``imbal embed``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from imbal.cli.options import add_config_arguments, config_overrides
from imbal.errors import ConfigError
from imbal.naming import EXECUTORS
from imbal.processes import sigterm_as_interrupt


def set_by_the_grid() -> tuple[str, ...]:
    """The config keys the grid sets for every cell (read when the options are built: the spec imports torch)."""
    from imbal.study.run.spec import SET_BY_THE_GRID

    return SET_BY_THE_GRID


def add_parsers(sub: argparse._SubParsersAction) -> None:
    _grid_parser(sub)
    _recommend_parser(sub)
    _report_parsers(sub)


EXECUTOR_HELP = (
    "train each cell as a scheduler job through submitit (pip install 'imbal[cluster]'): slurm submits job "
    "arrays from this process and waits (run it on a login node, e.g. in tmux); local runs the same jobs as "
    "subprocesses here. The study's `cluster:` mapping sets each job's partition, time_min, gpus_per_cell, "
    "cpus_per_cell, mem_gb and array_parallelism; rerunning the same command adopts the jobs still queued"
)


def _grid_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser(
        "grid",
        help="run a loss x sampler x seed study",
        description="Run every cell of a study YAML (see configs/study_*.yaml). Finished cells are skipped, "
        "killed ones resumed, failed ones recorded in error.txt. Config keys given here override the "
        "training settings of every cell (e.g. --epochs 5).",
    )
    g.add_argument("--config", required=True, help="study YAML")
    g.add_argument("--out", default="runs/study", help="study folder (default runs/study)")
    g.add_argument("--jobs", type=int, default=1, help="cells trained at once, one process each")
    g.add_argument("--shard", help="i/n: take every n-th cell starting at i (0 <= i < n), for job arrays")
    g.add_argument("--executor", choices=EXECUTORS, help=EXECUTOR_HELP)
    g.add_argument(
        "--dry-run",
        action="store_true",
        help="list the cells (and which are finished), train none; with --executor, the job array it submits",
    )
    g.add_argument("--quiet", action="store_true", help="one line per finished cell, no live progress")
    # each cell's folder and quietness are the grid's to set
    add_config_arguments(g, "config keys (override every cell)", skip=set_by_the_grid)
    g.set_defaults(func=run_grid_cmd)


def _recommend_parser(sub: argparse._SubParsersAction) -> None:
    rc = sub.add_parser(
        "recommend",
        help="race the configurations: which loss and sampler to use, at a fraction of a full grid",
        description="A statistical race over a study's configurations (default: the paper's 15 and la-ce): every "
        "configuration still in the race gets one more seed per round (in a cv study: one more repeat of all folds); after each round, on the validation primary "
        "metric, those that cannot beat the leader by the equivalence margin leave. Then the choice is confirmed on "
        "test once and the report is written (docs/method.md, 'The race'). Rerun the same command after a kill.",
    )
    rc.add_argument(
        "--config", required=True, help="study YAML (a `budget:` mapping may hold the limits below)"
    )
    rc.add_argument("--out", default="runs/recommend", help="race folder (default runs/recommend)")
    rc.add_argument("--jobs", type=int, default=1, help="cells trained at once, one process each")
    rc.add_argument("--shard", help="i/n: this process trains every n-th cell of each round (cluster arrays)")
    rc.add_argument("--executor", choices=EXECUTORS, help=EXECUTOR_HELP + " (one array per round)")
    rc.add_argument("--max-runs", type=int, help="stop when the next round would exceed this many trainings")
    rc.add_argument(
        "--min-seeds",
        type=int,
        help="seeds of the first round (default 2, at least 2); in a cv study repeats (default and least 1)",
    )
    rc.add_argument(
        "--max-seeds",
        type=int,
        help="seeds at most per configuration (default 5); a cv study's limit is its cv: repeats",
    )
    rc.add_argument("--quiet", action="store_true", help="one line per finished cell, no live progress")
    add_config_arguments(rc, "config keys (override every cell)", skip=set_by_the_grid)
    rc.set_defaults(func=run_recommend)


def _report_parsers(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("report", help="tables, statistics and figures of a study folder")
    r.add_argument("dir")
    r.add_argument("--out", help="where to write (default: the study folder)")
    r.add_argument(
        "--correction",
        default="holm",
        choices=["holm", "bh"],
        help="multiple-comparison control within each secondary metric's family: holm (family-wise error) "
        "or bh (false discovery rate); the primary metric always uses the fixed sequence + Holm",
    )
    r.add_argument(
        "--primary-metric", help="replace the stored plan's primary metric (the report says: post hoc)"
    )
    r.add_argument(
        "--equivalence-margin", type=float, help="replace the stored equivalence margin (post hoc)"
    )
    r.add_argument("--harm-margin", type=float, help="replace the stored harm margin (post hoc)")
    r.set_defaults(func=run_report)

    e = sub.add_parser("embed", help="t-SNE/UMAP maps of run features")
    e.add_argument("runs", nargs="+", help="run folders, or one study folder with --best-worst")
    e.add_argument("--method", default="tsne", choices=["tsne", "umap"])
    e.add_argument(
        "--best-worst", type=int, metavar="K", help="best K and worst K configurations of a study folder"
    )
    e.add_argument("--out", help="PNG (run folders) or folder (--best-worst)")
    e.set_defaults(func=run_embed)


def cluster_executor(args: argparse.Namespace, spec: Any) -> Any:
    """The ``--executor`` (checked: submitit installed, no --shard or --jobs beside it), or None."""
    if args.executor is None:
        return None
    from imbal.study.run.cluster import ClusterExecutor

    if args.shard:
        raise ConfigError("--executor and --shard exclude each other: the executor submits every cell itself")
    if args.jobs != 1:
        raise ConfigError(
            "--jobs applies to cells trained on this machine; with --executor, the study's "
            "cluster.array_parallelism sets how many jobs run at once"
        )
    return ClusterExecutor(args.executor, spec.cluster)


def dry_run_summary(spec: Any, cells: list, out: Path, jobs: int) -> str:
    """Cells by their factors, and a time estimate from the cells this folder has finished (their median)."""
    from imbal.engine import run_dir as rd

    configs = len({(c.sampler, c.loss) for c in cells})
    unit = f"{len(spec.seeds)} repeat(s) x {spec.folds} folds" if spec.folds else f"{len(spec.seeds)} seed(s)"
    line = f"{len(cells)} cells ({len(spec.entries)} data set(s) x {configs} configurations x {unit})"
    done = [c for c in cells if rd.is_finished(c.run_dir(out))]
    seconds = []
    for c in done:
        timing = rd.read_json(c.run_dir(out) / rd.METRICS_FILE).get("timing", {})
        if isinstance(timing.get("wall_seconds"), int | float):
            seconds.append(float(timing["wall_seconds"]))
    left = len(cells) - len(done)
    if not seconds:
        return line + f"; {left} to train, no estimate until one has finished here"
    median = sorted(seconds)[len(seconds) // 2]
    eta = median * left / max(1, min(jobs, left or 1)) / 60
    return (
        line
        + f"; {left} to train, about {eta:.0f} min at --jobs {jobs} (median {median:.0f} s per finished cell)"
    )


def run_grid_cmd(args: argparse.Namespace) -> int:
    from imbal.engine import run_dir as rd
    from imbal.study.run.grid import CellState, parse_shard, run_grid, shard_cells
    from imbal.study.run.shards import take_seat
    from imbal.study.run.spec import load_study

    if args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    spec = load_study(args.config, config_overrides(args))
    shard = parse_shard(args.shard)
    executor = cluster_executor(args, spec)
    if args.dry_run:
        cells = shard_cells(spec.cells(), shard)
        if executor is not None:
            from imbal.study.run.cluster import layout

            todo = [c for c in cells if not rd.is_finished(c.run_dir(Path(args.out)))]
            print(layout(todo, executor.kind, spec.cluster, Path(args.out)))
            return 0
        for cell in cells:
            print(f"{cell.key}{'  (finished)' if rd.is_finished(cell.run_dir(Path(args.out))) else ''}")
        print(dry_run_summary(spec, cells, Path(args.out), args.jobs))
        return 0
    args.resume_hint = lambda: (
        f"run the same command again to continue (finished cells are kept in {args.out})"
    )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    seat = take_seat(Path(args.out), shard)  # shards of one grid agree on n
    try:
        with sigterm_as_interrupt():
            status = run_grid(
                spec,
                args.out,
                jobs=args.jobs,
                shard=shard,
                live_every=0 if args.quiet else 30,
                executor=executor,
            )
    finally:
        seat.release()
    if status[CellState.BUSY]:
        print(
            f"grid: {len(status[CellState.BUSY])} cell(s) were busy in another process; run again when it has finished "
            "(a lock held on another machine by a process that is gone must be deleted by hand, as said above)"
        )
    print(f"next: imbal embed {args.out} --best-worst 3 && imbal report {args.out}")
    return 1 if status[CellState.FAILED] or status[CellState.BUSY] else 0


def run_recommend(args: argparse.Namespace) -> int:
    from imbal.study.race.folder import race_rules
    from imbal.study.race.runner import run_race
    from imbal.study.report.build import make_report
    from imbal.study.run.grid import parse_shard
    from imbal.study.run.spec import load_study

    if args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    spec = load_study(args.config, config_overrides(args))
    rules = race_rules(
        spec, {"max_runs": args.max_runs, "min_seeds": args.min_seeds, "max_seeds": args.max_seeds}
    )
    shard = parse_shard(args.shard)
    executor = cluster_executor(args, spec)
    args.resume_hint = lambda: f"run the same command again to continue the race in {args.out}"
    with sigterm_as_interrupt():
        state = run_race(
            spec,
            args.out,
            rules,
            jobs=args.jobs,
            shard=shard,
            live_every=0 if args.quiet else 30,
            executor=executor,
        )
    if shard[0] != 0:
        print(f"race finished; shard 0 writes the report: imbal report {args.out}")
        return 0
    report = make_report(args.out)
    print(report.text(report.answer))
    print(f"\nreport: {report.html.resolve()}")
    return 0 if state.outcome is not None else 1


def run_report(args: argparse.Namespace) -> int:
    from imbal.study.analysis.plan import KEYS
    from imbal.study.report.build import make_report

    overrides = {key: getattr(args, key) for key in KEYS if getattr(args, key) is not None}
    report = make_report(args.dir, args.out, correction=args.correction, overrides=overrides)
    print(f"report: {report.html.resolve()}\n        {report.markdown.resolve()}")
    return 0


def run_embed(args: argparse.Namespace) -> int:
    from imbal.study.report.embed import best_worst, embed_runs

    if args.best_worst:
        if len(args.runs) != 1:
            raise ConfigError("--best-worst takes one study folder")
        for p in best_worst(args.runs[0], args.best_worst, args.method, args.out):
            print(p)
    else:
        out = Path(args.out) if args.out else Path(args.runs[0]) / f"embedding_{args.method}.png"
        print(embed_runs(args.runs, out, args.method))
    return 0
