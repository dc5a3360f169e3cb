"""The report's data model: one object per data set, read once from the study folder.

A data set of a report is the runs that share a test set and their training settings (see
:func:`imbal.study.report.collect.collect_runs`). Its facts (names, counts, sizes) are read and
checked once; its runs are a table, a row per run, in the order of its outputs' rows; its outputs
are every run's validation and test labels, predictions and logits. Every section, the archive
and the decision take this object, so no section reads a run folder or picks a fact from a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from imbal.engine import run_dir as rd
from imbal.errors import RunFolderError
from imbal.naming import SPLITS, class_names
from imbal.study.analysis.outputs import Config, StudyOutputs


@dataclass(frozen=True)
class Facts:
    """What every run of one data set shares (from their ``metrics.json``)."""

    name: str  # the data set's own name (e.g. RetinaMNIST)
    source: str  # where it was read from (a report shows the file name only)
    synthetic: bool
    class_names: list[str]  # the class indices as text when the data set names none
    minority: int  # the rarest training class
    train_counts: list[int]
    test_counts: list[int]  # empty for runs that did not record them
    sizes: dict[str, int]  # images per split: train, val, test

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def minority_label(self) -> str:
        """The rarest class's name, quoted as the report writes it."""
        return repr(self.class_names[self.minority])

    @classmethod
    def of(cls, rows: pd.DataFrame, where: str) -> Facts:
        """The facts of a data set's rows (:func:`~imbal.study.report.collect.collect_runs`); they must agree."""
        num_classes = {len(f1) for f1 in rows.f1_per_class}
        facts = {
            (
                str(info.get("name", "")),
                str(info.get("source", "")),
                bool(info.get("synthetic", False)),
                tuple(class_names(names, len(f1))),
                int(minority),
                tuple(info.get("train_counts") or ()),
                tuple(info.get("test_counts") or ()),
                tuple(int((info.get("n") or {}).get(s, 0)) for s in SPLITS),
            )
            for info, names, f1, minority in zip(
                rows.dataset_info, rows.class_names, rows.f1_per_class, rows.minority_class
            )
        }
        if len(facts) != 1 or len(num_classes) != 1:
            raise RunFolderError(
                f"the runs of {where} disagree on their data's facts (names, classes, counts or sizes): "
                "they cannot be one data set of a report; report their folders separately"
            )
        ((name, source, synthetic, names, minority, train, test, sizes),) = facts
        return cls(
            name, source, synthetic, list(names), minority, list(train), list(test), dict(zip(SPLITS, sizes))
        )


@dataclass
class DatasetReport:
    """One data set of a report: its name in the report, its facts, its runs and their outputs."""

    key: str  # the name in the report: the cell label, plus why it was split (another test set, settings)
    facts: Facts
    runs: pd.DataFrame  # a row per run (collect_runs' columns), in the order of ``outputs.runs``
    outputs: StudyOutputs

    @property
    def file_key(self) -> str:
        """The data set's name as a file-name prefix of its tables and figures."""
        return rd.safe_name(self.key)

    @property
    def synthetic(self) -> bool:
        return bool(self.runs.synthetic.any())

    def runs_of(self, config: Config) -> pd.DataFrame:
        """The rows of one (sampler, loss) configuration."""
        return self.runs[(self.runs.sampler == config[0]) & (self.runs.loss == config[1])]

    def configs_settings(self) -> list[dict[str, Any]]:
        """Every run's stored settings (its config in metrics.json)."""
        return list(self.runs.config)
