"""Every configuration against the baseline, on test: the exploratory rows of the decision, each metric."""

from __future__ import annotations

import pandas as pd

from imbal.metrics import METRICS
from imbal.study.report.render import Block
from imbal.study.report.sections.findings import correction_text, level, qualify
from imbal.study.report.sections.section import Section
from imbal.study.report.sections.section import config_name as name


def comparisons_section(s: Section) -> list[Block]:
    """Every configuration against the baseline on test, each metric, with its verdict."""
    base = name(s.plan.baseline)
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
            f"(configuration minus baseline) with its {level(s.plan)} interval from seed-to-seed and test-image noise. "
            f"{primary} (primary): the rows are tested only when the confirmation said better or worse "
            f"(fixed sequence), then with Holm over them, and read 'equivalent' when a Holm-adjusted TOST shows "
            f"the difference inside ±{s.plan.margin:g}; 'not tested' otherwise. Secondary metrics: one family each, "
            f"corrected by {correction_text(s.plan)}, and checked for non-inferiority against the "
            f"harm margin {s.plan.harm_margin:g} (one-sided {level(s.plan)}). 'seeds needed': seeds for 80% power at Holm's "
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
            qualify(r.verdict, r.seeds < 2),
            r.non_inferiority or "-",
            (f"{r.seeds} folds" if s.data.outputs.folds is not None else f"{r.seeds} seeds")
            if r.seeds >= 2
            else f"1 seed, n = {r.n}",
            str(r.seeds_needed),
        ]
        for r in cmp.itertuples()
    ]
    header = [
        "configuration",
        "metric",
        "role",
        "difference",
        f"{level(s.plan)} CI",
        "p",
        "p adjusted",
        "verdict",
        "non-inferiority",
        "paired over",
        "seeds needed",
    ]
    return [*blocks, Block("table", header=header, rows=rows)]
