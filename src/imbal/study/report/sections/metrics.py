"""The paper's tables and their pictures: each metric as sampler x loss, class-wise F1, a confusion matrix.

Each metric gets the mean ± std table of the paper's layout (rows sampler, columns loss), the
relative change against the baseline (when its score is large enough for a per cent to mean
something), and a heatmap of the change on a fixed symmetric scale, marked with the exploratory
verdicts of :mod:`imbal.study.analysis.decision`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from imbal.metrics import METRICS
from imbal.study.analysis.stats import Verdict
from imbal.study.report import figures, tables
from imbal.study.report.render import Block
from imbal.study.report.sections.context import chance_note
from imbal.study.report.sections.section import Section
from imbal.study.report.sections.section import config_name as name

MARKS = {
    Verdict.BETTER: "better",
    Verdict.WORSE: "worse",
    Verdict.EQUIVALENT: "equiv.",
    Verdict.INCONCLUSIVE: "n.s.",
    Verdict.NOT_TESTED: "n.t.",
}


def _table_block(mean: pd.DataFrame, std: pd.DataFrame | None = None, n: pd.DataFrame | None = None) -> Block:
    """Rows sampler, columns loss. With ``std`` and ``n``: mean ± std cells, best in bold; else signed per cent."""
    best = tables.best_cell(mean) if std is not None else None
    rows, bold = [], set()
    for i, sampler in enumerate(mean.index):
        row = [sampler]
        for j, loss in enumerate(mean.columns):
            v = mean.loc[sampler, loss]
            if std is None or n is None:
                row.append("-" if pd.isna(v) else f"{v:+.1f}%")
                continue
            row.append(tables.format_cell(v, std.loc[sampler, loss], n.loc[sampler, loss]))
            if best == (sampler, loss):
                bold.add((i, j + 1))
        rows.append(row)
    return Block("table", header=["sampler \\ loss", *mean.columns], rows=rows, bold=bold)


def metric_table(s: Section, metric: str) -> list[Block]:
    """One metric on test in the paper's layout (mean ± std), with the chance level where it has one."""
    m = METRICS[metric]
    mean, std, n = tables.summary(s.runs, metric)
    s.csv(pd.concat({"mean": mean, "std": std, "n": n}, axis=1), metric, index=True)
    blocks = [
        Block("h3", m.label),
        Block("p", f"Test split, {s.cells_text}; best cell in bold."),
        _table_block(mean, std, n),
    ]
    if m.chance_note:
        blocks.append(Block("p", chance_note(s.facts)))
    return blocks


def metric_change(s: Section, metric: str) -> list[Block]:
    """One metric's relative change against the baseline and the heatmap of the change, with verdict marks."""
    m = METRICS[metric]
    mean = tables.summary(s.runs, metric)[0]
    blocks = []
    rel = tables.relative_change(mean, s.plan.baseline)
    if rel is not None:
        s.csv(rel, f"{metric}_relative", index=True)
        blocks += [
            Block("p", f"Relative change of the mean against {name(s.plan.baseline)} ({m.label}):"),
            _table_block(rel),
        ]
    blocks.append(Block("image", f"{m.label}: sampler x loss", path=_metric_figure(s, metric, mean)))
    return blocks


def _metric_figure(s: Section, metric: str, mean: pd.DataFrame) -> Path:
    m = METRICS[metric]
    path = s.figures / f"{s.key}_{metric}_heatmap.png"
    cmp = s.comparisons
    base = s.plan.baseline
    if cmp.empty or metric not in set(cmp.metric) or base[0] not in mean.index or base[1] not in mean.columns:
        return figures.heatmap(mean, f"{s.dataset}: {m.label} (test, {s.cells_text})", path, m.low, m.high)
    diff = mean - mean.loc[base]
    marks = pd.DataFrame("", index=mean.index, columns=mean.columns, dtype=object)
    for r in cmp[cmp.metric == metric].itertuples():
        marks.loc[r.sampler, r.loss] = MARKS[r.verdict] + (" (1 seed)" if r.seeds < 2 else "")
    marks.loc[base] = "baseline"
    finite = np.abs(diff.to_numpy(dtype=float))
    limit = max(0.05, float(np.ceil(np.nanmax(finite) * 20) / 20)) if np.isfinite(finite).any() else 0.05
    role = "primary" if metric == s.plan.primary else "secondary"
    title = (
        f"{s.dataset}: {m.label} ({role}), change vs {name(base)} (n.s. = not significant, n.t. = not tested)"
    )
    return figures.difference_heatmap(diff, marks, title, path, limit)


def class_f1_section(s: Section) -> list[Block]:
    """Class-wise test F1 per configuration, the rarest class marked."""
    f1 = tables.class_f1_table(s.data)
    s.csv(f1, "class_f1")
    f = s.facts
    counts = f.test_counts or [0] * f.num_classes
    header = ["sampler", "loss", "seeds"] + [
        f"{c} (n={k}){' minority' if i == f.minority else ''}"
        for i, (c, k) in enumerate(zip(f.class_names, counts))
    ]
    rows = [
        [str(r["sampler"]), str(r["loss"]), str(r["seeds"]), *[f"{r[c]:.3f}" for c in f.class_names]]
        for _, r in f1.iterrows()
    ]
    bold = {(int(f1[c].to_numpy().argmax()), j + 3) for j, c in enumerate(f.class_names)}
    path = figures.class_f1_bars(
        f1, f.class_names, f"{s.dataset}: class-wise test F1", s.figures / f"{s.key}_class_f1.png"
    )
    return [
        Block("h3", f"Class-wise F1 (test, {s.cells_text})"),
        Block("table", header=header, rows=rows, bold=bold),
        Block("image", "Class-wise F1", path=path),
    ]


def confusion_section(s: Section) -> list[Block]:
    """The test confusion matrix of the alternative chosen on validation (the baseline's without one)."""
    shown = (s.decision.alternative if s.decision else None) or s.plan.baseline
    sel = s.data.runs_of(shown)
    if sel.empty:
        return []
    cm = np.sum([np.array(c) for c in sel.confusion_matrix], axis=0)
    path = figures.confusion(
        cm,
        s.facts.class_names,
        f"{s.dataset}: {name(shown)} ({len(sel)} seeds)",
        s.figures / f"{s.key}_confusion.png",
    )
    return [
        Block("h3", f"Confusion matrix of the alternative chosen on validation ({name(shown)})"),
        Block("image", "Confusion matrix (test, summed over seeds)", path=path),
    ]
