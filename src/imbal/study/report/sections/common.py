"""A data set's report section: its runs, where its files go, and the blocks of its tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from imbal.engine import run_dir as rd
from imbal.metrics import METRICS
from imbal.study.analysis.decision import Decision
from imbal.study.analysis.plan import Plan
from imbal.study.report import figures, tables
from imbal.study.report.render import Block
from imbal.study.report.sections import findings


@dataclass
class Section:
    """One data set's runs and where its files go."""

    runs: pd.DataFrame
    dataset: str
    tables: Path
    figures: Path
    plan: Plan
    decision: Decision | None  # None: nothing to decide (one configuration, or no baseline)

    @property
    def comparisons(self) -> pd.DataFrame:
        return self.decision.table if self.decision is not None else pd.DataFrame()

    @property
    def key(self) -> str:
        return rd.safe_name(self.dataset)

    @property
    def seeds(self) -> int:
        return int(self.runs.groupby(["sampler", "loss"]).seed.nunique().max())

    def csv(self, frame: pd.DataFrame, name: str, index: bool = False) -> None:
        self.tables.mkdir(parents=True, exist_ok=True)
        frame.to_csv(self.tables / f"{self.key}_{name}.csv", index=index)


def cells_text(s: Section) -> str:
    return "mean ± std over seeds" if s.seeds >= 2 else "one seed per configuration (no spread to show)"


def class_f1_section(s: Section) -> list[Block]:
    f1 = tables.class_f1_table(s.runs)
    s.csv(f1, "class_f1")
    names = findings.class_names(s.runs)
    counts = s.runs.dataset_info.iloc[0].get("test_counts") or [0] * len(names)
    minority = int(s.runs.minority_class.iloc[0])
    header = ["sampler", "loss", "seeds"] + [
        f"{c} (n={k}){' minority' if i == minority else ''}" for i, (c, k) in enumerate(zip(names, counts))
    ]
    rows = [
        [str(r["sampler"]), str(r["loss"]), str(r["seeds"]), *[f"{r[c]:.3f}" for c in names]]
        for _, r in f1.iterrows()
    ]
    bold = {(int(f1[c].to_numpy().argmax()), j + 3) for j, c in enumerate(names)}
    path = figures.class_f1_bars(
        f1, names, f"{s.dataset}: class-wise test F1", s.figures / f"{s.key}_class_f1.png"
    )
    return [
        Block("h3", f"Class-wise F1 (test, {cells_text(s)})"),
        Block("table", header=header, rows=rows, bold=bold),
        Block("image", "Class-wise F1", path=path),
    ]


def comparisons_section(s: Section) -> list[Block]:
    base = findings.name(s.plan.baseline)
    blocks = [Block("h3", f"Every configuration against the baseline ({base}), on test")]
    cmp = s.comparisons
    if cmp.empty:
        return [*blocks, Block("p", f"No configuration shares the seeds of {base}, so no paired comparison.")]
    s.csv(cmp, "vs_baseline")
    primary = METRICS[s.plan.primary].label
    blocks.append(
        Block(
            "p",
            f"Exploratory: the choice and its confirmation are in the findings above. Paired difference "
            f"(configuration minus baseline) with its 95% interval from seed-to-seed and test-image noise. "
            f"{primary} (primary): the rows are tested only when the confirmation said better or worse "
            f"(fixed sequence), then with Holm over them, and read 'equivalent' when a Holm-adjusted TOST shows "
            f"the difference inside ±{s.plan.margin:g}; 'not tested' otherwise. Secondary metrics: one family each, "
            f"corrected by {findings.CORRECTIONS[s.plan.correction]}, and checked for non-inferiority against the "
            f"harm margin {s.plan.harm_margin:g} (one-sided 95%). 'seeds needed': seeds for 80% power at Holm's "
            "strictest level, taking the observed effect and spread as true (a planning estimate).",
        )
    )
    rows = [
        [
            f"{r.sampler} / {r.loss}",
            METRICS[r.metric].label,
            r.role,
            f"{r.difference:+.3f}",
            f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]",
            f"{r.p_value:.3f}",
            "-" if pd.isna(r.p_adjusted) else f"{r.p_adjusted:.3f}",
            r.verdict
            + (
                f" ({findings.ONE_SEED})"
                if r.seeds < 2 and r.verdict in ("better", "worse", "equivalent")
                else ""
            ),
            r.non_inferiority or "-",
            f"{r.seeds} seeds" if r.seeds >= 2 else f"1 seed, n = {r.n}",
            str(r.seeds_needed),
        ]
        for r in cmp.itertuples()
    ]
    header = [
        "configuration",
        "metric",
        "role",
        "difference",
        "95% CI",
        "p",
        "p adjusted",
        "verdict",
        "non-inferiority",
        "paired over",
        "seeds needed",
    ]
    return [*blocks, Block("table", header=header, rows=rows)]
