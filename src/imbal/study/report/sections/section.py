"""What every section builder takes: one data set of a report, the plan, the decision, and where files go."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from imbal.study.analysis.decision import Decision
from imbal.study.analysis.outputs import Config
from imbal.study.analysis.plan import Plan
from imbal.study.report.data import DatasetReport, Facts


def config_name(config: Config) -> str:
    """A (sampler, loss) configuration as the report writes it: ``oversample / ce+mcc``."""
    return f"{config[0]} / {config[1]}"


@dataclass
class Section:
    """One data set's section of a report."""

    data: DatasetReport
    plan: Plan
    decision: Decision | None  # None: nothing to decide (one configuration, or no baseline)
    tables: Path
    figures: Path

    @property
    def runs(self) -> pd.DataFrame:
        return self.data.runs

    @property
    def facts(self) -> Facts:
        return self.data.facts

    @property
    def dataset(self) -> str:
        """The data set's name in the report."""
        return self.data.key

    @property
    def key(self) -> str:
        """The prefix of its table and figure files."""
        return self.data.file_key

    @property
    def comparisons(self) -> pd.DataFrame:
        return self.decision.table if self.decision is not None else pd.DataFrame()

    @property
    def seeds(self) -> int:
        """The most seeds any configuration has."""
        return int(self.runs.groupby(["sampler", "loss"]).seed.nunique().max())

    @property
    def cells_text(self) -> str:
        return (
            "mean ± std over seeds" if self.seeds >= 2 else "one seed per configuration (no spread to show)"
        )

    def csv(self, frame: pd.DataFrame, name: str, index: bool = False) -> None:
        self.tables.mkdir(parents=True, exist_ok=True)
        frame.to_csv(self.tables / f"{self.key}_{name}.csv", index=index)
