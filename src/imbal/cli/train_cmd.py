"""``imbal train`` and ``imbal evaluate``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from imbal.engine.config import ConfigError, load_config, parse_overrides


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one configuration",
        description="Train one run. Any config key can be given as --key value, e.g. --loss ce+mcc "
        "--sampler oversample --epochs 100 --batch-size 50 --seed 3 --out runs/demo. --dataset takes a "
        "MedMNIST name, an npz path or a YAML mapping such as '{kind: synthetic, spatial_dims: 3}'.",
    )
    p.add_argument("--config", help="YAML file with config keys (see configs/)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run from its last checkpoint")
    p.set_defaults(func=run_train, accepts_overrides=True)

    e = sub.add_parser("evaluate", help="score a trained run on another split or data set")
    e.add_argument("run_dir")
    e.add_argument("--dataset", help="another data set (name, npz path or YAML mapping)")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--out", help="folder for the outputs (default: the run folder)")
    e.set_defaults(func=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    from imbal.engine.trainer import train

    overrides = parse_overrides(args.overrides)
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"--resume {run_dir}: no config.yaml there, nothing to resume")
        overrides["out"] = str(run_dir)
        cfg = load_config(run_dir / "config.yaml", overrides)
    else:
        cfg = load_config(args.config, overrides)
    out = train(cfg, resume=bool(args.resume))
    if not cfg.quiet:
        m = json.loads((out / "metrics.json").read_text())
        t = m["test"]
        print(
            f"{out}: best epoch {m['best_epoch']}, test balanced accuracy {t['balanced_accuracy']:.4f}, "
            f"macro F1 {t['macro_f1']:.4f}, MCC {t['mcc']:.4f}"
        )
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import yaml

    from imbal.engine.evaluate import evaluate_run

    dataset = (
        yaml.safe_load(args.dataset)
        if args.dataset and args.dataset.strip().startswith("{")
        else args.dataset
    )
    result = evaluate_run(args.run_dir, dataset=dataset, split=args.split, out=args.out)
    m = result["metrics"]
    print(
        f"{args.run_dir} on {result['dataset']} {args.split}: balanced accuracy {m['balanced_accuracy']:.4f}, "
        f"macro F1 {m['macro_f1']:.4f}, MCC {m['mcc']:.4f}, AUROC {m['auroc']:.4f}"
    )
    return 0
