"""The context of a data set's findings: what was run, and the free baseline every loss must beat.

"What was run" lists the data, the split sizes, the class counts and every training setting the
runs share (or how they vary); the post-hoc section re-decides every run with logit adjustment,
which costs no training; the chance note gives a table's scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from imbal.engine.config import REPORTED_KEYS
from imbal.losses import loss_settings_keys
from imbal.study.report import tables
from imbal.study.report.data import Facts
from imbal.study.report.render import Block
from imbal.study.report.sections.section import Section
from imbal.study.report.sections.section import config_name as name


def seeds_text(runs: pd.DataFrame) -> str:
    seeds = sorted(runs.seed.unique())
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})"


def context_blocks(s: Section) -> list[Block]:
    """What the runs were: data, class counts, shared settings and the grid."""
    f, runs = s.facts, s.runs
    counts = f.train_counts
    classes = ", ".join(
        f"{n} {c}{' (minority)' if k == f.minority else ''}"
        for k, (n, c) in enumerate(zip(f.class_names, counts))
    )
    ratio = max(counts) / max(min(counts), 1) if counts else float("nan")
    n = f.sizes
    rows = [
        # the source's file name only: a committed report names no machine's paths
        ["data", f"{f.name} ({'SYNTHETIC' if f.synthetic else Path(f.source).name})"],
        ["split sizes", f"train {n['train']}, validation {n['val']}, test {n['test']}"],
        ["training classes", f"{classes}; imbalance {ratio:.1f}:1"],
    ]
    # the loss settings shown are those the compared losses read (LossTerm.settings)
    for key in (*REPORTED_KEYS, *loss_settings_keys(runs.loss.unique())):
        values = sorted({str(c.get(key)) for c in runs.config})
        rows.append([key, values[0] if len(values) == 1 else f"varies: {', '.join(values)}"])
    grid = ", ".join(name(c) for c in tables.configurations(runs))
    rows.append(["configurations", f"{len(tables.configurations(runs))}: {grid}"])
    folds = s.data.outputs.folds
    if folds is not None:
        # pooled runs: one per configuration and repeat, each over every labelled image
        rows[1] = [
            "split sizes",
            f"pooled {n['test']} images; per fold: train {n['train']}, validation and test 1/{folds.k} each",
        ]
        rows[2] = ["classes (pooled)", rows[2][1]]
        rows.append(
            [
                "cross-validation",
                f"{folds.k} folds x {folds.repeats} repeat(s) (repeat r: partition r, seed r)",
            ]
        )
    else:
        rows.append(["seeds", seeds_text(runs)])
    return [Block("h3", "What was run"), Block("table", header=["setting", "value"], rows=rows)]


def posthoc_blocks(s: Section) -> list[Block]:
    """Each configuration with and without post-hoc logit adjustment (a decision rule that costs nothing)."""
    post = tables.posthoc_table(s.data)
    s.csv(post, "posthoc")
    baseline = s.plan.baseline
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
    base = post[(post.sampler == baseline[0]) & (post.loss == baseline[1])]
    text = (
        "Post-hoc logit adjustment subtracts tau * log(training prior) from a finished model's logits, with tau "
        "chosen on the validation split for the run's selection metric (0 when nothing helps). It costs no "
        "training: a loss is worth its price only if it beats this column."
    )
    if len(base):
        text += (
            f" For {name(baseline)} it moves balanced accuracy from {base.balanced_accuracy.mean():.3f} to "
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


def chance_note(facts: Facts) -> str:
    """What always predicting the majority class scores on this test set (the scale of the tables)."""
    counts = np.array(facts.test_counts, dtype=float)
    if not counts.size:
        return ""
    return (
        f"For scale: always predicting the majority class scores accuracy {counts.max() / counts.sum():.3f} and "
        f"balanced accuracy {1 / len(counts):.3f} (chance) on this test set."
    )
