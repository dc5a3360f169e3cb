"""Study tables: paper layout (rows sampler, columns loss), baseline comparisons, stability, post hoc.

Every function takes the runs of ONE data set (one test set; see :func:`collect_runs`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from imbal.engine import run_dir as rd
from imbal.metrics import METRICS
from imbal.posthoc import SELECTION_METRICS, posthoc_scores
from imbal.study.collect import loss_order, sampler_order
from imbal.study.stats import (
    ONE_SEED_ADVICE,
    Comparison,
    adjust_comparisons,
    paired_bootstrap,
    paired_t,
    seeds_needed,
)

BASELINE = ("uniform", "ce")
COMPARED = [name for name, m in METRICS.items() if m.compared]


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


def configurations(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(sampler, loss) pairs in report order."""
    present = set(zip(runs.sampler, runs.loss))
    return [(s, l) for s in sampler_order(runs.sampler) for l in loss_order(runs.loss) if (s, l) in present]


def class_f1_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean class-wise F1 over seeds, a row per configuration; columns are the class names."""
    names = runs.class_names.iloc[0] or [str(k) for k in range(len(runs.f1_per_class.iloc[0]))]
    rows = []
    for sampler, loss in configurations(runs):
        grp = runs[(runs.sampler == sampler) & (runs.loss == loss)]
        f1 = np.array(grp.f1_per_class.tolist(), dtype=float)
        rows.append({"sampler": sampler, "loss": loss, "seeds": len(grp), **dict(zip(names, f1.mean(0)))})
    return pd.DataFrame(rows)


def unstable(runs: pd.DataFrame) -> dict[tuple[str, str], list[tuple[int, list[str]]]]:
    """Configurations that zeroed a class (test F1 of 0) in some seed: ``{config: [(seed, classes)]}``."""
    names = runs.class_names.iloc[0] or [str(k) for k in range(len(runs.f1_per_class.iloc[0]))]
    out: dict[tuple[str, str], list[tuple[int, list[str]]]] = {}
    for config in configurations(runs):
        grp = runs[(runs.sampler == config[0]) & (runs.loss == config[1])].sort_values("seed")
        for r in grp.itertuples():
            zeroed = [names[k] for k, f in enumerate(r.f1_per_class) if f == 0]
            if zeroed:
                out.setdefault(config, []).append((int(r.seed), zeroed))
    return out


def _outputs(run_dir: str, split: str) -> dict[str, np.ndarray]:
    with np.load(Path(run_dir) / rd.outputs_file(split)) as z:
        return {k: z[k] for k in z.files}


def _compare(
    runs: pd.DataFrame, grp: pd.DataFrame, base: pd.DataFrame, metric: str, n_boot: int, cache: dict
):
    """One comparison of a configuration against the baseline, with its per-seed differences."""
    seeds = sorted(set(grp.index) & set(base.index))
    if len(seeds) >= 2:
        a, b = grp.loc[seeds, metric].to_numpy(float), base.loc[seeds, metric].to_numpy(float)
        return paired_t(a, b), a - b, seeds
    if len(seeds) == 1 and metric != "auroc":  # AUC needs scores, not the hard predictions bootstrapped
        seed = seeds[0]
        for run in (grp.loc[seed, "run_dir"], base.loc[seed, "run_dir"]):
            if run not in cache:
                cache[run] = _outputs(run, "test")
        a, b = cache[grp.loc[seed, "run_dir"]], cache[base.loc[seed, "run_dir"]]
        cmp = paired_bootstrap(
            a["labels"],
            a["logits"].argmax(1),
            b["logits"].argmax(1),
            len(runs.f1_per_class.iloc[0]),
            metric,
            n_boot=n_boot,
            minority=int(runs.minority_class.iloc[0]),
        )
        return cmp, None, seeds
    return None, None, seeds


def compare_to_baseline(
    runs: pd.DataFrame, metrics: list[str] | None = None, n_boot: int = 1000, correction: str = "holm"
) -> pd.DataFrame:
    """Every configuration against ``ce`` + ``uniform`` on each compared metric, corrected as one family.

    Paired t over seeds with >= 2 shared seeds, else a paired bootstrap over test samples (which
    leaves seed variation out and says so in its verdict). ``p_adjusted`` and ``verdict_adjusted``
    control the family-wise error (Holm) or the false discovery rate (BH) over all rows.
    """
    s0, l0 = BASELINE
    base = runs[(runs.sampler == s0) & (runs.loss == l0)].set_index("seed")
    if base.empty:
        return pd.DataFrame()
    rows: list[dict] = []
    cache: dict[str, dict[str, np.ndarray]] = {}
    for sampler, loss in configurations(runs):
        if (sampler, loss) == BASELINE:
            continue
        grp = runs[(runs.sampler == sampler) & (runs.loss == loss)].set_index("seed")
        for metric in metrics or COMPARED:
            cmp, diffs, seeds = _compare(runs, grp, base, metric, n_boot, cache)
            if cmp is None:
                continue
            rows.append(_comparison_row(sampler, loss, metric, cmp, diffs, seeds))
    if not rows:
        return pd.DataFrame()
    return adjust_comparisons(pd.DataFrame(rows), correction)


def _comparison_row(sampler, loss, metric, cmp: Comparison, diffs, seeds) -> dict:
    if diffs is None:
        needed = ONE_SEED_ADVICE
    else:
        n = seeds_needed(diffs)
        needed = "no difference to find" if n is None and np.mean(diffs) == 0 else (str(n) if n else "> 50")
    return {
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
        "seeds_needed": needed,
    }


def posthoc_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every run re-decided by post-hoc logit adjustment (tau fit on validation for its selection metric)."""
    rows = []
    for r in runs.itertuples():
        val, test = _outputs(r.run_dir, "val"), _outputs(r.run_dir, "test")
        metric = r.select_metric if r.select_metric in SELECTION_METRICS else "balanced_accuracy"
        res = posthoc_scores(
            torch.from_numpy(val["logits"]),
            torch.from_numpy(val["labels"]),
            torch.from_numpy(test["logits"]),
            torch.from_numpy(test["labels"]),
            torch.tensor(r.train_counts, dtype=torch.float64),
            metric,
        )
        row = {"sampler": r.sampler, "loss": r.loss, "seed": r.seed, "tau": res["tau"], "tau_metric": metric}
        for k in COMPARED:
            row[k] = res["test"][k]
            row[f"{k}_posthoc"] = res["test_adjusted"][k]
        rows.append(row)
    return pd.DataFrame(rows)
