"""``imbal report DIR``: tables in the paper's layout, paired statistics and figures, as Markdown and HTML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from imbal.engine import run_dir as rd
from imbal.metrics import METRICS
from imbal.study import figures, tables
from imbal.study.collect import collect_runs, failed_runs
from imbal.study.render import Block, to_html, to_markdown

METRIC_LABELS = {k: m.label for k, m in METRICS.items()}


def _table_block(mean: pd.DataFrame, std: pd.DataFrame | None = None, n: pd.DataFrame | None = None) -> Block:
    """Rows sampler, columns loss. With ``std`` and ``n``: mean ± std cells, best in bold; else signed per cent."""
    best = tables.best_cell(mean) if std is not None else None
    rows, bold = [], set()
    for i, sampler in enumerate(mean.index):
        row = [sampler]
        for j, loss in enumerate(mean.columns):
            v = mean.loc[sampler, loss]
            if std is None:
                row.append("-" if pd.isna(v) else f"{v:+.1f}%")
                continue
            row.append(tables.format_cell(v, std.loc[sampler, loss], n.loc[sampler, loss]))
            if best == (sampler, loss):
                bold.add((i, j + 1))
        rows.append(row)
    return Block("table", header=["sampler \\ loss", *mean.columns], rows=rows, bold=bold)


def dataset_section(runs: pd.DataFrame, dataset: str, out: Path, n_boot: int) -> list[Block]:
    fig_dir, tab_dir = out / "figures", out / "tables"
    tab_dir.mkdir(parents=True, exist_ok=True)
    d = runs[runs.dataset == dataset]
    seeds = sorted(d.seed.unique())
    n_test = int(d.n_test.iloc[0])
    synthetic = bool(d.synthetic.any())
    class_names = d.class_names.iloc[0] or [str(k) for k in range(len(d.f1_per_class.iloc[0]))]
    blocks = [Block("h2", f"{dataset}" + (" (SYNTHETIC data)" if synthetic else ""))]
    blocks.append(
        Block(
            "p",
            f"{len(d)} runs, {d.groupby(['sampler', 'loss']).ngroups} configurations, seeds "
            f"{', '.join(map(str, seeds))}; every number is on the test split (n = {n_test}), "
            "at the epoch with the best validation score. Cells: mean ± std over seeds; best cell "
            "in bold.",
        )
    )
    if synthetic:
        blocks.append(
            Block(
                "note",
                "These runs used the built-in SYNTHETIC set, not real images: the numbers test "
                "the pipeline, not the losses.",
            )
        )
    for metric, label in METRIC_LABELS.items():
        mean, std, n = tables.summary(d, metric)
        blocks += [Block("h3", label), _table_block(mean, std, n)]
        pd.concat({"mean": mean, "std": std, "n": n}, axis=1).to_csv(tab_dir / f"{dataset}_{metric}.csv")
        rel = tables.relative_change(mean)
        if rel is not None:
            blocks += [
                Block("p", f"Relative change of the mean against ce + uniform ({label}):"),
                _table_block(rel),
            ]
            rel.to_csv(tab_dir / f"{dataset}_{metric}_relative.csv")
        blocks.append(
            Block(
                "image",
                f"{label}: sampler x loss",
                path=figures.heatmap(
                    mean,
                    f"{dataset}: {label} (test, mean over seeds)",
                    fig_dir / f"{dataset}_{metric}_heatmap.png",
                ),
            )
        )

    f1 = tables.class_f1_table(d)
    f1.to_csv(tab_dir / f"{dataset}_class_f1.csv", index=False)
    blocks.append(Block("h3", "Class-wise F1 (test, mean over seeds)"))
    counts = np.array(d.confusion_matrix.iloc[0]).sum(1)
    header = ["sampler", "loss", "seeds", *[f"{c} (n={int(k)})" for c, k in zip(class_names, counts)]]
    rows, bold = [], set()
    for _, r in f1.iterrows():
        rows.append([r.sampler, r.loss, str(r.seeds), *[f"{r[c]:.3f}" for c in class_names]])
    for j, c in enumerate(class_names):
        bold.add((int(f1[c].to_numpy().argmax()), j + 3))
    blocks.append(Block("table", header=header, rows=rows, bold=bold))
    blocks.append(
        Block(
            "image",
            "Class-wise F1",
            path=figures.class_f1_bars(
                f1, class_names, f"{dataset}: class-wise test F1", fig_dir / f"{dataset}_class_f1.png"
            ),
        )
    )

    blocks.append(Block("h3", "Against the baseline (ce + uniform)"))
    comparisons = pd.concat(
        [tables.compare_to_baseline(d, m, n_boot=n_boot) for m in ("balanced_accuracy", "macro_f1", "mcc")],
        ignore_index=True,
    )
    if comparisons.empty:
        blocks.append(Block("p", "No ce + uniform baseline in this grid, so no paired comparison."))
    else:
        comparisons.to_csv(tab_dir / f"{dataset}_vs_baseline.csv", index=False)
        method = comparisons.method.iloc[0]
        blocks.append(
            Block(
                "p",
                f"Paired difference (configuration minus baseline) with a 95% confidence interval, "
                f"by {method}. 'better' / 'worse' when the interval excludes 0, else "
                "'inconclusive'. Paired seeds or bootstrapped test samples are given per row.",
            )
        )
        rows = []
        for r in comparisons.itertuples():
            rows.append(
                [
                    f"{r.sampler} / {r.loss}",
                    METRIC_LABELS[r.metric],
                    f"{r.difference:+.3f}",
                    f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]",
                    f"{r.p_value:.3f}",
                    r.verdict,
                    f"{r.seeds} seeds" if r.method.startswith("paired t") else f"n = {r.n}",
                ]
            )
        blocks.append(
            Block(
                "table",
                header=["configuration", "metric", "difference", "95% CI", "p", "verdict", "paired over"],
                rows=rows,
            )
        )
    # confusion matrix of the best configuration by mean balanced accuracy, summed over its seeds
    mean, _, _ = tables.summary(d, "balanced_accuracy")
    best = tables.best_cell(mean)
    if best is not None:
        sel = d[(d.sampler == best[0]) & (d.loss == best[1])]
        cm = np.sum([np.array(c) for c in sel.confusion_matrix], axis=0)
        blocks.append(Block("h3", f"Confusion matrix of the best configuration ({best[0]} / {best[1]})"))
        blocks.append(
            Block(
                "image",
                "Confusion matrix (summed over seeds)",
                path=figures.confusion(
                    cm,
                    class_names,
                    f"{dataset}: {best[0]} / {best[1]} ({len(sel)} seeds)",
                    fig_dir / f"{dataset}_confusion.png",
                ),
            )
        )
    embedding = out / f"embedding_{dataset}.png"
    if embedding.is_file():
        blocks += [
            Block("h3", "Feature space (t-SNE of penultimate test features)"),
            Block("image", "best and worst configurations by macro F1", path=embedding),
        ]
    return blocks


def make_report(
    root: str | Path, out: str | Path | None = None, n_boot: int = 1000, correction: str = "holm"
) -> dict[str, Path]:
    """Write ``report.md``, ``report.html``, ``tables/*.csv`` and ``figures/*.png`` for a grid folder."""
    root = Path(root)
    out = Path(out) if out else root
    out.mkdir(parents=True, exist_ok=True)
    runs = collect_runs(root)
    runs.drop(columns=["class_names", "f1_per_class", "confusion_matrix"]).to_csv(
        out / "runs.csv", index=False
    )
    failed = failed_runs(root)
    blocks = [Block("h1", f"imbal study report: {root.name}")]
    blocks.append(
        Block(
            "p", f"{len(runs)} finished runs in {root}. Datasets: {', '.join(sorted(runs.dataset.unique()))}."
        )
    )
    if failed:
        blocks.append(
            Block(
                "note",
                f"{len(failed)} run(s) failed and are left out: {', '.join(failed[:5])}"
                + (" ..." if len(failed) > 5 else ""),
            )
        )
    for dataset in sorted(runs.dataset.unique()):
        blocks += dataset_section(runs, dataset, out, n_boot)
    md, page = out / "report.md", out / "report.html"
    rd.atomic_write_text(md, to_markdown(blocks, out))
    rd.atomic_write_text(page, to_html(blocks, f"imbal report: {root.name}"))
    return {"markdown": md, "html": page, "tables": out / "tables"}
