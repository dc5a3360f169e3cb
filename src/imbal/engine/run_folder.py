"""A run folder can only ever describe one run: claimed before training, checked on resume."""

from __future__ import annotations

import shutil
from pathlib import Path

from lightning_fabric import Fabric

from imbal.engine import run_dir as rd
from imbal.engine.config import TrainConfig, config_differences, read_yaml_mapping
from imbal.errors import RunFolderError


def _looks_like_run(out: Path) -> bool:
    return any((out / f).exists() for f in (rd.CONFIG, rd.METRICS_FILE, rd.BEST, rd.LAST, rd.HISTORY))


def check_folder(cfg: TrainConfig, *, resume: bool, overwrite: bool) -> None:
    """Refuse a ``cfg.out`` that could end up describing another run; changes nothing (every rank)."""
    out = Path(cfg.out)
    if resume:
        if not (out / rd.CONFIG).is_file():
            raise RunFolderError(f"--resume {out}: no {rd.CONFIG} there, nothing to resume")
        stored = read_yaml_mapping(out / rd.CONFIG, "run config")
        wanted = cfg.to_dict()
        diff = config_differences(stored, wanted)
        if diff:
            changes = ", ".join(f"{k} {stored.get(k)!r} -> {wanted[k]!r}" for k in diff)
            raise RunFolderError(
                f"{out} was trained with other settings ({changes}); resume with the stored settings or "
                "train into another --out"
            )
    elif out.is_file():
        raise RunFolderError(f"--out {out} is a file, not a folder")
    elif out.is_dir() and rd.run_contents(out):
        if not overwrite:
            what = "another run" if _looks_like_run(out) else "other files"
            raise RunFolderError(
                f"--out {out} already holds {what}; --resume to continue it, --overwrite to replace it, "
                "or choose another --out"
            )
        if not _looks_like_run(out):
            raise RunFolderError(
                f"--out {out} holds files that are not an imbal run; refusing to delete them"
            )


def take_folder(fabric: Fabric, cfg: TrainConfig, *, resume: bool, overwrite: bool) -> None:
    """After :func:`check_folder` and once the data loaded: clear (``overwrite``), then write config.yaml.

    Nothing is written before the data and model are built, so a run that fails on bad input leaves
    its ``--out`` as it was (a fixed rerun is not refused as "another run").
    """
    out = Path(cfg.out)
    fabric.barrier()  # every rank checked and built before rank 0 changes anything
    if fabric.is_global_zero:
        if overwrite and not resume and out.is_dir():
            for p in rd.run_contents(out):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(f"--out {out} cannot be created: {exc.strerror}") from None
        rd.write_yaml(out / rd.CONFIG, cfg.to_dict())
    fabric.barrier()
