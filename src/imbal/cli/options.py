"""Command-line options generated from :class:`TrainConfig`: every key with its type, default and help."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn


class Parser(argparse.ArgumentParser):
    """argparse with imbal's error contract: one line on stderr, exit code 2.

    Abbreviations are off: ``--epoch`` must not silently mean ``--epochs``. Arguments added with
    :meth:`defer` are built only when this parser is used, so ``imbal --help`` and ``imbal data``
    never build (and import) what ``imbal train`` needs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._deferred: list[Callable[[Parser], None]] = []

    def defer(self, add: Callable[[Parser], None]) -> None:
        """Call ``add(self)`` before this parser first parses or prints its help."""
        self._deferred.append(add)

    def _build(self) -> None:
        while self._deferred:
            self._deferred.pop(0)(self)

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        self._build()
        return super().parse_known_args(*args, **kwargs)

    def format_help(self) -> str:
        self._build()
        return super().format_help()

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_config_arguments(
    parser: Parser, title: str, skip: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()
) -> None:
    """``--key value`` for every config key (``--batch-size`` and ``--batch_size`` alike).

    Values are parsed as YAML and checked by the config loader, so the command line and a YAML file
    accept the same values; only keys given on the command line are returned (defaults come from the
    YAML file or :class:`TrainConfig`). ``skip`` leaves out keys the command sets itself. Added when
    the command is used: the config table's name checks import torch (seconds).
    """
    parser.defer(lambda p: _config_group(p, title, skip() if callable(skip) else skip))


# --help groups the config keys by their role (imbal.engine.config.KeyRole)
GROUP_TITLES = {
    "training": "what a run computes",
    "varied": "what a study varies",
    "execution": "how it computes",
    "resource": "storage and memory (same results)",
    "presentation": "output",
}


def _config_group(parser: Parser, title: str, skip: tuple[str, ...]) -> None:
    from imbal.engine.config import FIELDS, KeyRole, TrainConfig, role_of, type_name

    groups = {role: parser.add_argument_group(f"{title}: {GROUP_TITLES[role]}") for role in KeyRole}
    defaults = TrainConfig().to_dict()
    for name, f in FIELDS.items():
        if name in skip:
            continue
        group = groups[role_of(name)]
        flags = [f"--{name.replace('_', '-')}"] + ([f"--{name}"] if "_" in name else [])
        kind = type_name(name)
        group.add_argument(
            *flags,
            dest=f"cfg_{name}",
            metavar=kind.upper() if kind != "bool" else "BOOL",
            nargs="?" if kind == "bool" else None,
            const="true" if kind == "bool" else None,
            default=argparse.SUPPRESS,
            help=f"{f.metadata.get('help', '')} (default: {_show(defaults[name])})",
        )


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {k.removeprefix("cfg_"): v for k, v in vars(args).items() if k.startswith("cfg_")}


def _show(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def print_error(prefix: str, exc: BaseException) -> None:
    print(f"imbal: {prefix}: {one_line(exc)}", file=sys.stderr)
