"""One grid cell trained in a child process: ``python -m imbal.study.cell [--resume] < config.yaml``.

The child asks the kernel to kill it when its parent (the grid) dies, so that a killed grid leaves
no orphaned trainer behind that a rerun would race with (docs/method.md, "Running a study").
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """SIGTERM when the parent exits; exit now if it already did (the race before prctl)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    parent = os.environ.get("IMBAL_PARENT_PID")
    if parent and os.getppid() != int(parent):
        sys.exit(143)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    die_with_parent()
    from imbal.engine import run_dir as rd
    from imbal.engine.config import load_config
    from imbal.engine.trainer import train
    from imbal.errors import USER_ERROR_EXIT, UserError
    from imbal.yaml_read import load_yaml

    cfg = load_config(None, load_yaml(sys.stdin.read(), "the cell's config"))
    try:
        train(cfg, resume="--resume" in argv)
    except UserError as exc:
        # one line, as the CLI prints it; the grid reads it back and raises CellFailed
        rd.atomic_write_text(Path(cfg.out) / rd.ERROR, f"{type(exc).__name__}: {exc}\n")
        return USER_ERROR_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
