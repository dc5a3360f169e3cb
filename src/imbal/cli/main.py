"""Entry point of the ``imbal`` console script."""

from __future__ import annotations

import argparse
import sys

from imbal.cli import data_cmd, study_cmd, train_cmd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imbal", description="Imbalance-aware training and studies for medical image classification."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train_cmd.add_parsers(sub)
    study_cmd.add_parsers(sub)
    data_cmd.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    from imbal.engine.config import ConfigError
    from imbal.engine.trainer import NonFiniteLossError

    try:
        return args.func(args)
    except NonFiniteLossError as exc:
        print(f"imbal: stopped: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"imbal: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
