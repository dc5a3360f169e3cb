"""Study tables: paper layout (rows sampler, columns loss), class-wise F1, post hoc.

Every function takes ONE data set (its runs, or its :class:`~imbal.study.report.data.DatasetReport`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from imbal.metrics import METRICS
from imbal.posthoc import posthoc_scores, tuned_for
from imbal.study.report.collect import loss_order, sampler_order
from imbal.study.report.data import DatasetReport

COMPARED = [name for name, m in METRICS.items() if m.compared]
# relative changes only against a baseline of at least this much: per cent of a near-zero score mislead
RELATIVE_FLOOR = 0.1


def summary(runs: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Mean, std and seed count per (sampler, loss) in the paper's layout."""
    g = runs.groupby(["sampler", "loss"])[metric]
    rows = sampler_order(runs.sampler)
    cols = loss_order(runs.loss)
    mean = g.mean().unstack().reindex(index=rows, columns=cols)
    std = g.std(ddof=1).unstack().reindex(index=rows, columns=cols)
    n = g.count().unstack().reindex(index=rows, columns=cols)
    return mean, std, n


def best_cell(mean: pd.DataFrame) -> tuple[str, str] | None:
    stacked = mean.stack().dropna()
    return None if stacked.empty else stacked.idxmax()


def format_cell(m: float, s: float, n: float) -> str:
    if m is None or (isinstance(m, float) and math.isnan(m)):
        return "-"
    if (
        n is None
        or (isinstance(n, float) and math.isnan(n))
        or n < 2
        or (isinstance(s, float) and math.isnan(s))
    ):
        return f"{m:.3f}"
    return f"{m:.3f} ± {s:.3f}"


def relative_change(mean: pd.DataFrame, baseline: tuple[str, str]) -> pd.DataFrame | None:
    """Per cent change of each cell against the baseline; None when its score is under :data:`RELATIVE_FLOOR`."""
    s, loss = baseline
    if s not in mean.index or loss not in mean.columns or not np.isfinite(mean.loc[s, loss]):
        return None
    base = mean.loc[s, loss]
    return (mean - base) / abs(base) * 100 if abs(base) >= RELATIVE_FLOOR else None


def configurations(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(sampler, loss) pairs in report order."""
    present = set(zip(runs.sampler, runs.loss))
    return [(s, l) for s in sampler_order(runs.sampler) for l in loss_order(runs.loss) if (s, l) in present]


def class_f1_table(data: DatasetReport) -> pd.DataFrame:
    """Mean class-wise F1 over seeds, a row per configuration; columns are the class names."""
    runs, names = data.runs, data.facts.class_names
    rows = []
    for sampler, loss in configurations(runs):
        grp = runs[(runs.sampler == sampler) & (runs.loss == loss)]
        f1 = np.array(grp.f1_per_class.tolist(), dtype=float)
        rows.append({"sampler": sampler, "loss": loss, "seeds": len(grp), **dict(zip(names, f1.mean(0)))})
    return pd.DataFrame(rows)


def posthoc_table(data: DatasetReport) -> pd.DataFrame:
    """Every run re-decided by post-hoc logit adjustment (tau fit on validation for its selection metric)."""
    val, test = data.outputs.val, data.outputs.test
    if val.logits is None or test.logits is None:
        raise ValueError(
            f"{data.key} holds no logits: post-hoc adjustment needs a report read from run folders"
        )
    rows = []
    for i, r in enumerate(data.runs.itertuples()):
        metric = tuned_for(r.select_metric)
        res = posthoc_scores(
            torch.from_numpy(val.logits[i]),
            torch.from_numpy(val.labels),
            torch.from_numpy(test.logits[i]),
            torch.from_numpy(test.labels),
            torch.tensor(r.train_counts, dtype=torch.float64),
            metric,
        )
        row = {"sampler": r.sampler, "loss": r.loss, "seed": r.seed, "tau": res["tau"], "tau_metric": metric}
        for k in COMPARED:
            row[k] = res["test"][k]
            row[f"{k}_posthoc"] = res["test_adjusted"][k]
        rows.append(row)
    return pd.DataFrame(rows)
