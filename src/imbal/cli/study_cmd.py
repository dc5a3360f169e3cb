"""``imbal grid``, ``imbal report`` and ``imbal embed``."""

from __future__ import annotations

import argparse
from pathlib import Path

from imbal.engine.config import parse_overrides


def add_parsers(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser(
        "grid",
        help="run a loss x sampler x seed study",
        description="Run every cell of a study YAML (see configs/study_*.yaml). Finished cells are skipped, "
        "killed ones resumed, failed ones recorded in error.txt. Extra --key value pairs override the "
        "training settings of every cell (e.g. --epochs 5).",
    )
    g.add_argument("--config", required=True, help="study YAML")
    g.add_argument("--out", default="runs/study", help="study folder (default runs/study)")
    g.add_argument("--jobs", type=int, default=1, help="cells trained at once, one process each")
    g.add_argument("--shard", help="i/n: take every n-th cell starting at i (0 <= i < n), for job arrays")
    g.set_defaults(func=run_grid_cmd, accepts_overrides=True)

    r = sub.add_parser("report", help="tables, statistics and figures of a study folder")
    r.add_argument("dir")
    r.add_argument("--out", help="where to write (default: the study folder)")
    r.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples when a grid has one seed")
    r.set_defaults(func=run_report)

    e = sub.add_parser("embed", help="t-SNE/UMAP maps of run features")
    e.add_argument("runs", nargs="+", help="run folders, or one study folder with --best-worst")
    e.add_argument("--method", default="tsne", choices=["tsne", "umap"])
    e.add_argument(
        "--best-worst", type=int, metavar="K", help="best K and worst K configurations of a study folder"
    )
    e.add_argument("--out", help="PNG (run folders) or folder (--best-worst)")
    e.set_defaults(func=run_embed)


def run_grid_cmd(args: argparse.Namespace) -> int:
    from imbal.study.grid import parse_shard, run_grid
    from imbal.study.spec import load_study

    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    spec = load_study(args.config, parse_overrides(args.overrides))
    status = run_grid(spec, args.out, jobs=args.jobs, shard=parse_shard(args.shard))
    print(f"next: imbal embed {args.out} --best-worst 3 && imbal report {args.out}")
    return 1 if status["failed"] else 0


def run_report(args: argparse.Namespace) -> int:
    from imbal.study.report import make_report

    paths = make_report(args.dir, args.out, n_boot=args.bootstrap)
    print(f"report: {paths['html'].resolve()}\n        {paths['markdown'].resolve()}")
    return 0


def run_embed(args: argparse.Namespace) -> int:
    from imbal.study.embed import best_worst, embed_runs

    if args.best_worst:
        if len(args.runs) != 1:
            raise ValueError("--best-worst takes one study folder")
        for p in best_worst(args.runs[0], args.best_worst, args.method, args.out):
            print(p)
    else:
        out = Path(args.out) if args.out else Path(args.runs[0]) / f"embedding_{args.method}.png"
        print(embed_runs(args.runs, out, args.method))
    return 0
