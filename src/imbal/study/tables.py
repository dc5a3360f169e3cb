"""Paper-layout tables (rows sampler, columns loss, mean ± std over seeds) and the baseline comparisons."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from imbal.engine import run_dir as rd
from imbal.study.collect import loss_order, sampler_order
from imbal.study.stats import Comparison, paired_bootstrap, paired_t

BASELINE = ("uniform", "ce")


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


def relative_change(mean: pd.DataFrame) -> pd.DataFrame | None:
    """Per cent change of each cell against the ``ce`` + ``uniform`` baseline."""
    s, loss = BASELINE
    if s not in mean.index or loss not in mean.columns or not np.isfinite(mean.loc[s, loss]):
        return None
    base = mean.loc[s, loss]
    return (mean - base) / abs(base) * 100 if base != 0 else None


def class_f1_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean class-wise F1 over seeds, a row per configuration."""
    names = runs.class_names.iloc[0] or [str(k) for k in range(len(runs.f1_per_class.iloc[0]))]
    rows = []
    for (sampler, loss), grp in runs.groupby(["sampler", "loss"]):
        f1 = np.array(grp.f1_per_class.tolist(), dtype=float)
        rows.append({"sampler": sampler, "loss": loss, "seeds": len(grp), **dict(zip(names, f1.mean(0)))})
    frame = pd.DataFrame(rows)
    frame["_s"] = frame.sampler.map({s: i for i, s in enumerate(sampler_order(frame.sampler))})
    frame["_l"] = frame.loss.map({s: i for i, s in enumerate(loss_order(frame.loss))})
    return frame.sort_values(["_s", "_l"]).drop(columns=["_s", "_l"]).reset_index(drop=True)


def _predictions(run_dir: str) -> pd.DataFrame:
    return pd.read_csv(Path(run_dir) / rd.predictions_file("test"))


def compare_to_baseline(runs: pd.DataFrame, metric: str, n_boot: int = 1000) -> pd.DataFrame:
    """Every configuration against ``ce`` + ``uniform``: paired over seeds, or bootstrap with one seed."""
    s0, l0 = BASELINE
    base = runs[(runs.sampler == s0) & (runs.loss == l0)].set_index("seed")
    if base.empty:
        return pd.DataFrame()
    rows = []
    base_predictions: dict[int, pd.DataFrame] = {}  # read once, compared with every configuration
    for (sampler, loss), grp in runs.groupby(["sampler", "loss"]):
        if (sampler, loss) == BASELINE:
            continue
        grp = grp.set_index("seed")
        seeds = sorted(set(grp.index) & set(base.index))
        if len(seeds) >= 2:
            cmp: Comparison = paired_t(grp.loc[seeds, metric].to_numpy(), base.loc[seeds, metric].to_numpy())
        elif len(seeds) == 1 and metric != "auroc":  # AUC needs scores, not the hard predictions bootstrapped
            seed = seeds[0]
            if seed not in base_predictions:
                base_predictions[seed] = _predictions(base.loc[seed, "run_dir"])
            a, b = _predictions(grp.loc[seed, "run_dir"]), base_predictions[seed]
            k = len(runs.f1_per_class.iloc[0])
            cmp = paired_bootstrap(
                a.label.to_numpy(), a.prediction.to_numpy(), b.prediction.to_numpy(), k, metric, n_boot=n_boot
            )
        else:
            continue
        rows.append(
            {
                "sampler": sampler,
                "loss": loss,
                "metric": metric,
                "difference": cmp.mean_diff,
                "ci_low": cmp.low,
                "ci_high": cmp.high,
                "p_value": cmp.p_value,
                "verdict": cmp.verdict,
                "method": cmp.method,
                "n": cmp.n,
                "seeds": len(seeds),
            }
        )
    return pd.DataFrame(rows)
