"""The part of a report a user reads first: what the runs were, and which configuration to use.

Recommendation rule (stated in every report): among the configurations that are not "worse" than
``ce`` + ``uniform`` on any compared metric after the multiple-comparison correction and that never
zeroed a class (a test F1 of 0) in any seed, the one with the best mean balanced accuracy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from imbal.metrics import METRICS
from imbal.study import tables
from imbal.study.render import Block
from imbal.study.stats import ONE_SEED_ADVICE

RULE = (
    "Rule: among the configurations that are not worse than ce + uniform on any compared metric (after "
    "the correction) and never zeroed a class in any seed, the best mean balanced accuracy."
)
CORRECTIONS = {"holm": "Holm (family-wise error 5%)", "bh": "Benjamini-Hochberg (false discovery rate 5%)"}
SETTINGS = (
    "arch",
    "widen_factor",
    "norm",
    "small_input",
    "size",
    "crop_size",
    "epochs",
    "batch_size",
    "lr",
    "schedule",
    "augment",
    "train_subset",
    "metric_memory",
    "select_metric",
    "threads",  # CPU results depend on it; runs may differ in it and still be pooled
)


def name(config: tuple[str, str]) -> str:
    return f"{config[0]} / {config[1]}"


def class_names(runs: pd.DataFrame) -> list[str]:
    return runs.class_names.iloc[0] or [str(k) for k in range(len(runs.f1_per_class.iloc[0]))]


def minority_label(runs: pd.DataFrame) -> str:
    k = int(runs.minority_class.iloc[0])
    return f"{class_names(runs)[k]!r}"


def seeds_text(runs: pd.DataFrame) -> str:
    seeds = sorted(runs.seed.unique())
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})"


def context_blocks(runs: pd.DataFrame) -> list[Block]:
    """What the runs were: data, class counts, shared settings and the grid."""
    info = runs.dataset_info.iloc[0]
    names = class_names(runs)
    counts = info.get("train_counts") or []
    minority = int(runs.minority_class.iloc[0])
    classes = ", ".join(
        f"{n} {c}{' (minority)' if k == minority else ''}" for k, (n, c) in enumerate(zip(names, counts))
    )
    ratio = max(counts) / max(min(counts), 1) if counts else float("nan")
    n = info["n"]
    rows = [
        ["data", f"{info['name']} ({'SYNTHETIC' if info.get('synthetic') else info.get('source', '')})"],
        ["split sizes", f"train {n['train']}, validation {n['val']}, test {n['test']}"],
        ["training classes", f"{classes}; imbalance {ratio:.1f}:1"],
    ]
    for key in SETTINGS:
        values = sorted({str(c.get(key)) for c in runs.config})
        rows.append([key, values[0] if len(values) == 1 else f"varies: {', '.join(values)}"])
    grid = ", ".join(name(c) for c in tables.configurations(runs))
    rows.append(["configurations", f"{len(tables.configurations(runs))}: {grid}"])
    rows.append(["seeds", seeds_text(runs)])
    return [Block("h3", "What was run"), Block("table", header=["setting", "value"], rows=rows)]


def recommend(runs: pd.DataFrame, comparisons: pd.DataFrame) -> tuple[str, str] | None:
    """The configuration chosen by :data:`RULE`, or None when no configuration qualifies."""
    unstable = tables.unstable(runs)
    worse = set()
    if not comparisons.empty:
        bad = comparisons[comparisons.verdict_adjusted.str.startswith("worse")]
        worse = set(zip(bad.sampler, bad.loss))
    mean = runs.groupby(["sampler", "loss"]).balanced_accuracy.mean()
    allowed = [c for c in tables.configurations(runs) if c not in worse and c not in unstable]
    if not allowed:
        return None
    # on a tie the baseline wins: a change needs a reason
    return max(allowed, key=lambda c: (mean[c], c == tables.BASELINE))


def shown_configuration(runs: pd.DataFrame, rec: tuple[str, str] | None) -> tuple[str, str]:
    """What the findings table compares with the baseline: the recommendation, else the best alternative."""
    mean = runs.groupby(["sampler", "loss"]).balanced_accuracy.mean()
    if rec is not None and rec != tables.BASELINE:
        return rec
    others = mean.drop(tables.BASELINE, errors="ignore")
    return others.idxmax() if len(others) else tables.BASELINE


def _answer(runs: pd.DataFrame, rec: tuple[str, str] | None, comparisons: pd.DataFrame) -> str:
    mean = runs.groupby(["sampler", "loss"]).balanced_accuracy.mean()
    base = tables.BASELINE
    if base not in mean.index:
        best = mean.idxmax()
        return f"There is no ce + uniform baseline in these runs, so nothing is compared; the best mean balanced accuracy is {name(best)} ({mean[best]:.3f})."
    alt = shown_configuration(runs, rec)
    row = _row(comparisons, alt, "balanced_accuracy")
    alt_text = ""
    if alt != base:
        verdict = row.verdict_adjusted if row is not None else "not compared"
        alt_text = f"The best alternative, {name(alt)} ({mean[alt]:.3f}, {mean[alt] - mean[base]:+.3f} balanced accuracy), is {verdict} against it."
    if rec is None:
        return (
            "No configuration qualifies: every one zeroed a class in some seed or was worse than ce + uniform. "
            f"These runs cannot recommend a configuration; ce + uniform scores {mean[base]:.3f}. {alt_text}"
        )
    if rec == base:
        return f"Stay with ce + uniform (balanced accuracy {mean[base]:.3f}): no other configuration qualifies as better. {alt_text}"
    if row is None:
        return f"{name(rec)} has the best mean balanced accuracy ({mean[rec]:.3f}); it could not be compared with ce + uniform."
    diff = f"{mean[rec]:.3f} vs {mean[base]:.3f} for ce + uniform ({row.difference:+.3f}, 95% CI [{row.ci_low:+.3f}, {row.ci_high:+.3f}], adjusted p = {row.p_adjusted:.3f})"
    if row.verdict_adjusted == "better":
        return f"Use {name(rec)}: balanced accuracy {diff}, better after the correction."
    if row.verdict_adjusted.startswith("better"):
        return (
            f"{name(rec)} looks better: balanced accuracy {diff}, but from test samples of one seed only, "
            f"which leaves seed-to-seed variation out; {ONE_SEED_ADVICE}."
        )
    needed = row.seeds_needed
    more = (
        f" About {needed} seeds would be needed to confirm a difference of this size."
        if needed.isdigit()
        else ""
    )
    return (
        f"{name(rec)} has the best mean balanced accuracy ({diff}), but the evidence cannot decide: the "
        f"difference is inconclusive after the correction, so ce + uniform is as good a choice on this data.{more}"
    )


def _row(comparisons: pd.DataFrame, config: tuple[str, str], metric: str):
    if comparisons.empty:
        return None
    sel = comparisons[
        (comparisons.sampler == config[0]) & (comparisons.loss == config[1]) & (comparisons.metric == metric)
    ]
    return None if sel.empty else next(sel.itertuples())


def findings_blocks(runs: pd.DataFrame, comparisons: pd.DataFrame, correction: str) -> list[Block]:
    rec = recommend(runs, comparisons)
    blocks = [Block("h3", "Findings"), Block("p", _answer(runs, rec, comparisons)), Block("p", RULE)]
    base = runs[(runs.sampler == tables.BASELINE[0]) & (runs.loss == tables.BASELINE[1])]
    shown = shown_configuration(runs, rec)
    chosen = runs[(runs.sampler == shown[0]) & (runs.loss == shown[1])]
    rows = []
    for metric in tables.COMPARED:
        label = METRICS[metric].label + (f" ({minority_label(runs)})" if metric == "minority_f1" else "")
        row = _row(comparisons, shown, metric)
        cells = [label, f"{base[metric].mean():.3f}" if len(base) else "-", f"{chosen[metric].mean():.3f}"]
        if row is None:
            cells += ["-"] * 5
        else:
            cells += [
                f"{row.difference:+.3f}",
                f"[{row.ci_low:+.3f}, {row.ci_high:+.3f}]",
                f"{row.p_value:.3f}",
                f"{row.p_adjusted:.3f}",
                row.verdict_adjusted,
            ]
        rows.append(cells)
    header = [
        "metric",
        "ce + uniform",
        name(shown) + (" (chosen by the rule)" if shown == rec else " (best alternative)"),
        "difference",
        "95% CI (unadjusted)",
        "p",
        "p adjusted",
        "verdict",
    ]
    blocks.append(Block("table", header=header, rows=rows))
    blocks += _stability_and_evidence(runs, comparisons, correction)
    return blocks


def _stability_and_evidence(runs: pd.DataFrame, comparisons: pd.DataFrame, correction: str) -> list[Block]:
    blocks = []
    unstable = tables.unstable(runs)
    if unstable:
        parts = [
            f"{name(c)} ({'; '.join(f'seed {s}: ' + ', '.join(cls) for s, cls in v)})"
            for c, v in unstable.items()
        ]
        blocks.append(
            Block("note", "Unstable (a class with test F1 0 in some seed): " + "; ".join(parts) + ".")
        )
    seeds = runs.groupby(["sampler", "loss"]).seed.nunique()
    counts = runs.dataset_info.iloc[0].get("test_counts") or []
    minority = int(runs.minority_class.iloc[0])
    rare = f" (rarest class {minority_label(runs)}: n = {counts[minority]})" if counts else ""
    family = int(comparisons.family_size.max()) if not comparisons.empty else 0
    text = (
        f"Evidence: {seeds.min()}{'-' + str(seeds.max()) if seeds.max() != seeds.min() else ''} seed(s) per "
        f"configuration, test n = {int(runs.n_test.iloc[0])}{rare}; {family} comparisons against ce + uniform, "
        f"corrected by {CORRECTIONS[correction]}; intervals are per comparison (unadjusted)."
    )
    if seeds.max() < 2:
        text += (
            " With one seed the intervals come from resampling test samples only and leave seed-to-seed "
            f"variation out, so no verdict here is firm; {ONE_SEED_ADVICE}."
        )
    blocks.append(Block("p", text))
    return blocks


def posthoc_blocks(post: pd.DataFrame) -> list[Block]:
    """Each configuration with and without post-hoc logit adjustment (a decision rule that costs nothing)."""
    rows = []
    for sampler, loss in tables.configurations(post):
        grp = post[(post.sampler == sampler) & (post.loss == loss)]
        rows.append(
            [
                f"{sampler} / {loss}",
                f"{grp.balanced_accuracy.mean():.3f}",
                f"{grp.balanced_accuracy_posthoc.mean():.3f}",
                f"{grp.macro_f1.mean():.3f}",
                f"{grp.macro_f1_posthoc.mean():.3f}",
                f"{grp.minority_f1.mean():.3f}",
                f"{grp.minority_f1_posthoc.mean():.3f}",
                f"{grp.tau.mean():.2f}",
            ]
        )
    base = post[(post.sampler == tables.BASELINE[0]) & (post.loss == tables.BASELINE[1])]
    text = (
        "Post-hoc logit adjustment subtracts tau * log(training prior) from a finished model's logits, with tau "
        "chosen on the validation split for the run's selection metric (0 when nothing helps). It costs no "
        "training: a loss is worth its price only if it beats this column."
    )
    if len(base):
        text += (
            f" For ce + uniform it moves balanced accuracy from {base.balanced_accuracy.mean():.3f} to "
            f"{base.balanced_accuracy_posthoc.mean():.3f} (mean tau {base.tau.mean():.2f})."
        )
    header = [
        "configuration",
        "BA",
        "BA post hoc",
        "macro F1",
        "macro F1 post hoc",
        "rarest F1",
        "rarest F1 post hoc",
        "tau",
    ]
    return [
        Block("h3", "A free baseline: post-hoc logit adjustment"),
        Block("p", text),
        Block("table", header=header, rows=rows),
    ]


def chance_note(runs: pd.DataFrame) -> str:
    counts = np.array(runs.dataset_info.iloc[0].get("test_counts") or [], dtype=float)
    if not counts.size:
        return ""
    return (
        f"For scale: always predicting the majority class scores accuracy {counts.max() / counts.sum():.3f} and "
        f"balanced accuracy {1 / len(counts):.3f} (chance) on this test set."
    )
