"""``imbal train`` and ``imbal evaluate``."""

from __future__ import annotations

import argparse
from pathlib import Path

from imbal.cli.options import add_config_arguments, config_overrides
from imbal.engine import run_dir as rd
from imbal.naming import SPLITS
from imbal.processes import sigterm_as_interrupt


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one configuration",
        description="Train one run. Every config key below can be set in a YAML file (--config) or as "
        "--key value (YAML syntax for values: --dataset '{kind: synthetic, spatial_dims: 3}'); the "
        "command line wins.",
    )
    p.add_argument("--config", help="YAML file with config keys (see configs/)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace the run in a non-empty --out")
    add_config_arguments(p, "config keys")
    p.set_defaults(func=run_train)

    e = sub.add_parser("evaluate", help="score a trained run on another split or data set")
    e.add_argument("run_dir")
    e.add_argument("--dataset", help="another data set (name, npz path or YAML mapping)")
    e.add_argument("--split", default="test", choices=list(SPLITS))
    e.add_argument("--out", help=f"folder for the outputs (default: RUN_DIR/{rd.EVALUATIONS}/<data>_<split>)")
    e.set_defaults(func=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    from imbal.engine.config import load_config
    from imbal.engine.trainer import train

    overrides = config_overrides(args)
    if args.resume:
        run_dir = Path(args.resume)
        overrides["out"] = str(run_dir)
        config = run_dir / rd.CONFIG
        cfg = load_config(config if config.is_file() else None, overrides)
    else:
        cfg = load_config(args.config, overrides)
    args.resume_hint = lambda: f"resume with: imbal train --resume {cfg.out}"
    with sigterm_as_interrupt():  # `kill` stops as Ctrl-C does: the resume hint, no half-written file
        out = train(cfg, resume=bool(args.resume), overwrite=args.overwrite)
    from lightning_fabric.utilities.rank_zero import rank_zero_only

    if getattr(rank_zero_only, "rank", 0) != 0:
        return 0  # under DDP every rank runs this command; the result is printed once
    m = rd.read_json(out / rd.METRICS_FILE)
    t = m["test"]
    print(
        f"{out}: best epoch {m['best_epoch']}, test balanced accuracy {t['balanced_accuracy']:.4f}, "
        f"macro F1 {t['macro_f1']:.4f}, MCC {t['mcc']:.4f}"
    )
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from imbal.engine.config import coerce
    from imbal.engine.evaluate import evaluate_run

    dataset = coerce("dataset", args.dataset) if args.dataset else None
    result = evaluate_run(args.run_dir, dataset=dataset, split=args.split, out=args.out)
    m = result["metrics"]
    print(
        f"{args.run_dir} on {result['dataset']} {args.split}: balanced accuracy {m['balanced_accuracy']:.4f}, "
        f"macro F1 {m['macro_f1']:.4f}, MCC {m['mcc']:.4f}, AUROC {m['auroc']:.4f} -> {result['out']}"
    )
    return 0
