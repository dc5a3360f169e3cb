"""Files written where a user points (``imbal predict --out``): never over an input, a run, a device or a folder.

The target is resolved first, so a symbolic link is followed and the file it names is written (the
link stays a link); ``-`` writes to standard output. Anything that is not a regular file (a folder,
a device such as ``/dev/full``, a FIFO) is refused, and so is a file that is one of the command's
inputs or lies inside a run folder, whose files other commands read as the run's results.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from imbal.engine import run_dir as rd
from imbal.errors import ConfigError

STDOUT = "-"


def _kind(path: Path) -> str:
    return "a folder" if path.is_dir() else "a device, pipe or socket"


def enclosing_run(path: Path) -> Path | None:
    """The run folder that holds ``path`` (one of its ancestors holds a run's files), or None."""
    for folder in path.parents:
        if rd.looks_like_run(folder):
            return folder
    return None


def output_target(out: str | Path, *, inputs: Iterable[Path] = (), what: str = "--out") -> Path | None:
    """The resolved file to write for ``out`` (None: standard output), or one line saying why not."""
    text = str(out)
    if text == STDOUT:
        return None
    if not text.strip():
        raise ConfigError(f"{what} is empty; give a file path, or {STDOUT} for standard output")
    target = Path(os.path.realpath(text))
    if target.exists() and not target.is_file():
        raise ConfigError(
            f"{what} {text} is {_kind(target)}, not a regular file; give a file path, or {STDOUT} for "
            "standard output"
        )
    if target in {Path(os.path.realpath(p)) for p in inputs}:
        raise ConfigError(f"{what} {text} is one of the inputs; write to another file")
    run = enclosing_run(target)
    if run is not None:
        raise ConfigError(
            f"{what} {text} lies inside the run folder {run}, whose files are the run's results; write "
            "outside it"
        )
    if target.parent.exists() and not target.parent.is_dir():
        raise ConfigError(f"{what} {text}: {target.parent} is not a folder")
    return target


def write_output(target: Path | None, text: str, what: str = "--out") -> None:
    """Write ``text`` to ``target`` (from :func:`output_target`) in one step, or to standard output."""
    if target is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        rd.atomic_write_text(target, text)
    except OSError as exc:
        raise ConfigError(f"{what} {target} cannot be written: {exc.strerror or exc}") from None
