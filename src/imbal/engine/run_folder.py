"""A run folder can only ever describe one run: claimed before training, checked on resume."""

from __future__ import annotations

import shutil
from pathlib import Path

from lightning_fabric import Fabric

from imbal.engine import run_dir as rd
from imbal.engine.config import FIELDS, TrainConfig, config_differences, read_yaml_mapping
from imbal.errors import ConfigError, RunFolderError
from imbal.losses import LOSS_OPTIONS


def written_by_a_run(config_file: Path) -> bool:
    """A config.yaml that a run wrote: the whole resolved config (a user's own file sets a few keys)."""
    try:
        keys = set(read_yaml_mapping(config_file, "run config"))
    except ConfigError:
        return False
    return set(FIELDS) - set(LOSS_OPTIONS) <= keys


def not_a_runs(out: Path) -> list[Path]:
    """What in ``out`` no run wrote: never deleted, never trained into (a lone config.yaml may be the user's)."""
    foreign = rd.foreign_entries(out)
    config = out / rd.CONFIG
    if config.is_file() and not rd.looks_like_run(out) and not written_by_a_run(config):
        foreign.append(config)
    return foreign


def check_folder(cfg: TrainConfig, *, resume: bool, overwrite: bool) -> None:
    """Refuse a ``cfg.out`` that could end up describing another run; changes nothing (every rank)."""
    out = Path(cfg.out)
    if resume:
        if not (out / rd.CONFIG).is_file():
            raise RunFolderError(f"--resume {out}: no {rd.CONFIG} there, nothing to resume")
        rd.check_no_links_out(out)
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
        foreign = not_a_runs(out)
        if foreign:
            names = ", ".join(p.name for p in foreign[:5]) + (" ..." if len(foreign) > 5 else "")
            raise RunFolderError(
                f"--out {out} holds files that are not an imbal run's ({names}); imbal never deletes or "
                "mixes into them: choose another --out"
            )
        if not overwrite:
            raise RunFolderError(
                f"--out {out} already holds another run; --resume to continue it, --overwrite to replace it, "
                "or choose another --out"
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
            # only a run's own entries: check_folder refused a folder holding anything else
            foreign = not_a_runs(out)
            if foreign:
                raise RunFolderError(
                    f"--out {out} now holds {foreign[0].name}, which is not a run's; nothing deleted"
                )
            for p in rd.run_contents(out):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(f"--out {out} cannot be created: {exc.strerror}") from None
        rd.write_yaml(out / rd.CONFIG, cfg.to_dict())
    fabric.barrier()
