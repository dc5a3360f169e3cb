"""Names every layer shares: a data set's splits, its classes' display names, export formats, executors.

The loaders, the cache, the run folder, the evaluation and the study read them from here, so a
split or an unnamed class is spelled one way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

SPLITS = ("train", "val", "test")
HELD_OUT = ("val", "test")  # the splits a run scores: validation picks the epoch, test confirms
# imbal export --format (imbal.export.bundle.FORMATS holds what each does)
EXPORT_FORMATS = ("onnx", "torchscript")
# imbal grid / recommend --executor (imbal.study.run.cluster)
EXECUTORS = ("local", "slurm")


def class_names(names: Sequence[str] | None, num_classes: int) -> list[str]:
    """The given class names, or the class indices as text when a data set names none."""
    return [str(n) for n in names] if names else [str(k) for k in range(num_classes)]
