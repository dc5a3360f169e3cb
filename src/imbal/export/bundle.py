"""``imbal export RUN_DIR --format onnx|torchscript --out DIR``: model, preprocessing.json and MODEL_CARD.md.

The order is the promise: the out folder is checked, the run loaded, the model exported into
memory and run back on check images against predict's own forward pass; only when that parity
holds are the three files written (each atomically). A failed check, a missing package or a bad
folder leaves ``--out`` as it was.

The out folder is refused when it is a file, a run folder or inside one (a run's files are its
results), or when it is not empty; ``--overwrite`` replaces an earlier export there, deleting only
the files an export writes, by name, and refuses a folder holding anything else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from imbal.engine import run_dir as rd
from imbal.engine.user_output import enclosing_run
from imbal.errors import ConfigError
from imbal.export import card, onnx_export, preprocessing, torchscript_export
from imbal.export.parity import DEFAULT_IMAGES, LOGIT_TOLERANCE, Parity, Runner, check_images, check_parity
from imbal.export.source import ExportedNet, load_run


@dataclass(frozen=True)
class Format:
    """One export format: its file, how it is written, how it is run back, what runs it."""

    model_file: str
    write: Callable[[torch.nn.Module, torch.Tensor], bytes]
    runner: Callable[[bytes, int], Runner]
    runtime: Callable[[], str]
    require: Callable[[], object] = lambda: None


FORMATS = {
    "onnx": Format(
        onnx_export.MODEL_FILE,
        onnx_export.to_onnx,
        onnx_export.onnx_runner,
        onnx_export.runtime_name,
        onnx_export.require,
    ),
    "torchscript": Format(
        torchscript_export.MODEL_FILE,
        torchscript_export.to_torchscript,
        torchscript_export.torchscript_runner,
        torchscript_export.runtime_name,
    ),
}
# every file an export writes: --overwrite deletes these and nothing else
EXPORT_FILES = (*(f.model_file for f in FORMATS.values()), preprocessing.FILE, card.FILE)


def export_folder(out: str | Path, overwrite: bool) -> Path:
    """The folder to export into, checked; nothing is changed here."""
    text = str(out)
    if not text.strip():
        raise ConfigError("--out is empty; give the folder to export into")
    target = Path(os.path.realpath(text))
    if target.exists() and not target.is_dir():
        raise ConfigError(f"--out {text} is a file, not a folder; give a new or empty folder")
    run = target if rd.looks_like_run(target) else enclosing_run(target)
    if run is not None:
        raise ConfigError(
            f"--out {text} lies inside the run folder {run}, whose files are the run's results; export outside it"
        )
    entries = sorted(target.iterdir()) if target.is_dir() else []
    foreign = [p.name for p in entries if p.name not in EXPORT_FILES]
    if entries and not overwrite:
        raise ConfigError(
            f"--out {text} is not empty ({', '.join(p.name for p in entries[:5])}); --overwrite replaces an "
            "earlier export there, or choose another --out"
        )
    if foreign:
        raise ConfigError(
            f"--out {text} holds files that are not an export's ({', '.join(foreign[:5])}); imbal never deletes "
            "or mixes into them: choose another --out"
        )
    return target


def _example(images: torch.Tensor) -> torch.Tensor:
    # two images, so that no tracer can take the batch size for a constant 1
    x = images[:2].float().div(255.0)
    return torch.cat([x, x]) if len(x) == 1 else x


def _export_lines(fmt: str, model_file: str, parity: Parity) -> list[str]:
    return [
        f"- `{model_file}` ({fmt}): images `(batch, channels, *size)` float32 in [0, 1] -> `logits` and "
        "`probabilities` (plain softmax); the decoding and scaling an input needs, the class names, and the "
        f"temperature and tau with their formulas are in `{preprocessing.FILE}` (applied by the caller, not in the model).",
        f"- Checked before writing: {parity.source}, at batch sizes {', '.join(map(str, parity.batch_sizes))}, "
        f"by {parity.runtime}: the largest difference from `imbal predict`'s probabilities was "
        f"{parity.max_abs_difference:.1e} (tolerance {parity.tolerance:g}), of its logits "
        f"{parity.max_logit_difference:.1e} x max(1, |logit|) (tolerance {LOGIT_TOLERANCE:g}).",
    ]


def _write(target: Path, files: dict[str, bytes]) -> None:
    for name in EXPORT_FILES:  # an earlier export's files (checked by export_folder: nothing else is there)
        if (target / name).is_file() and name not in files:
            (target / name).unlink()
    for name, data in files.items():
        rd.atomic_write_bytes(target / name, data)


def export_run(
    run_dir: str | Path,
    fmt: str,
    out: str | Path,
    *,
    overwrite: bool = False,
    check_inputs: Sequence[str | Path] | None = None,
    check_count: int = DEFAULT_IMAGES,
) -> dict[str, Any]:
    """Export a finished run's model after its parity check; returns the folder, the files and the check."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    spec = FORMATS[fmt]
    spec.require()  # a missing package is said before anything is loaded
    target = export_folder(out, overwrite)
    run = load_run(run_dir)
    check = check_images(run, check_inputs, check_count)
    net = ExportedNet(run).eval()
    data = spec.write(net, _example(check.images))
    parity = check_parity(spec.runner(data, 0), run, check, spec.runtime())
    described = preprocessing.preprocessing_spec(run, fmt, spec.model_file, parity)
    text = card.model_card(run.run_dir, export=_export_lines(fmt, spec.model_file, parity))
    files = {
        spec.model_file: data,
        preprocessing.FILE: (json.dumps(described, indent=2) + "\n").encode(),
        card.FILE: text.encode(),
    }
    _write(target, files)
    return {"out": target, "files": list(files), "parity": parity}
