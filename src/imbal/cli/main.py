"""Entry point of the ``imbal`` console script.

User errors (:class:`imbal.errors.UserError`: config, data, files, run folders) print one line and
exit with code 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

from imbal.cli import data_cmd, export_cmd, predict_cmd, study_cmd, train_cmd
from imbal.cli.options import Parser, print_error
from imbal.errors import NonFiniteLossError, UserError


def build_parser() -> Parser:
    parser = Parser(
        prog="imbal", description="Imbalance-aware training and studies for medical image classification."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    train_cmd.add_parsers(sub)
    predict_cmd.add_parser(sub)
    export_cmd.add_parsers(sub)
    study_cmd.add_parsers(sub)
    data_cmd.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except NonFiniteLossError as exc:
        print_error("stopped", exc)
        return 1
    except UserError as exc:
        print_error("error", exc)
        return 2
    except KeyboardInterrupt:
        hint = getattr(args, "resume_hint", lambda: "")()
        print(f"\nimbal: interrupted{'; ' + hint if hint else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
