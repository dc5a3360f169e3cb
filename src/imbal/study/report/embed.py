"""``imbal embed``: 2D maps (t-SNE, or UMAP when installed) of penultimate test features, coloured by class."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes

from imbal.engine import run_dir as rd
from imbal.errors import ConfigError, MissingFileError
from imbal.naming import class_names
from imbal.study.report import tables
from imbal.study.report.collect import collect_runs
from imbal.study.report.figures import plt, save


def project(features: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    if method == "umap":
        try:
            import umap
        except ImportError as exc:
            raise ConfigError(
                "method 'umap' needs the umap-learn package (pip install 'imbal[umap]')"
            ) from exc
        return umap.UMAP(n_components=2, random_state=seed).fit_transform(features)
    if method != "tsne":
        raise ConfigError(f"method must be 'tsne' or 'umap', got {method!r}")
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(features) - 1) // 3)))
    return TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(features)


def panel(ax: Axes, run_dir: Path, method: str, title: str | None = None) -> None:
    feats = np.load(run_dir / rd.outputs_file("test"))
    m = rd.read_json(run_dir / rd.METRICS_FILE)
    names = class_names(m["dataset"].get("class_names"), len(m["test"]["f1_per_class"]))
    xy = project(feats["features"].astype(np.float32), method)
    labels = feats["labels"]
    cmap = matplotlib.colormaps["tab10"]
    # draw large classes first so that rare classes stay visible on top
    for k in np.argsort(-np.bincount(labels, minlength=len(names))):
        sel = labels == k
        f1 = m["test"]["f1_per_class"][k]
        ax.scatter(
            xy[sel, 0], xy[sel, 1], s=6, alpha=0.75, color=cmap(k % 10), label=f"{names[k]}: F1 {f1:.2f}"
        )
    ax.set_xticks([])
    ax.set_yticks([])
    cfg = m.get("config", {})
    ax.set_title(
        title or f"{cfg.get('sampler')} / {cfg.get('loss')} (macro F1 {m['test']['macro_f1']:.3f})",
        fontsize=9,
    )
    handles, texts = ax.get_legend_handles_labels()
    order = sorted(range(len(texts)), key=lambda i: names.index(texts[i].split(":")[0]))
    ax.legend(
        [handles[i] for i in order],
        [texts[i] for i in order],
        fontsize=7,
        markerscale=2,
        loc="best",
        framealpha=0.8,
    )


def embed_runs(
    run_dirs: list[str] | list[Path] | list[str | Path],
    out: str | Path,
    method: str = "tsne",
    titles: list[str] | list[str | None] | None = None,
    cols: int | None = None,
) -> Path:
    """One panel per run (``cols`` per row, at most 3 by default); returns the PNG path."""
    paths = [Path(r) for r in run_dirs]
    for r in paths:
        if not (r / rd.outputs_file("test")).is_file():
            raise MissingFileError(f"{r} has no {rd.outputs_file('test')} (is it a finished run folder?)")
    cols = cols or min(3, len(paths))
    rows = math.ceil(len(paths) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4 * rows), squeeze=False, layout="constrained")
    for ax, r, t in zip(axes.flat, paths, titles or [None] * len(paths)):
        panel(ax, r, method, t)
    for ax in list(axes.flat)[len(paths) :]:
        ax.axis("off")
    fig.suptitle(
        f"{'t-SNE' if method == 'tsne' else 'UMAP'} of penultimate test features (legend: class-wise test F1)"
    )
    return save(fig, Path(out))


def embedding_file(dataset: str) -> str:
    """The best/worst figure of one data set in a study folder (the report embeds it)."""
    return f"embedding_{rd.safe_name(dataset)}.png"


def best_worst(
    grid_dir: str | Path, k: int = 3, method: str = "tsne", out_dir: str | Path | None = None
) -> list[Path]:
    """The paper's figure: best k and worst k configurations by mean test macro F1, per dataset.

    Each configuration is drawn from its run with the median macro F1 over seeds (a typical seed).
    """
    grid_dir = Path(grid_dir)
    out_dir = Path(out_dir) if out_dir else grid_dir
    runs = collect_runs(grid_dir)
    paths = []
    for dataset in sorted(runs.dataset.unique()):
        d = runs[runs.dataset == dataset]
        mean, _, _ = tables.summary(d, "macro_f1")
        ranked = mean.stack().dropna().sort_values(ascending=False)
        k_eff = min(k, len(ranked) // 2) if len(ranked) > 1 else 1
        best = list(ranked.index[:k_eff])
        worst = [c for c in ranked.index[-k_eff:] if c not in best]
        dirs, titles = [], []
        for rank, (sampler, loss) in enumerate(best + worst):
            sel = d[(d.sampler == sampler) & (d.loss == loss)].sort_values("macro_f1")
            row = sel.iloc[(len(sel) - 1) // 2]
            tag = "best" if rank < k_eff else "worst"
            dirs.append(row.run_dir)
            titles.append(
                f"{tag}: {sampler} / {loss}, seed {row.seed}\n"
                f"macro F1 {row.macro_f1:.3f} (mean over {len(sel)} seeds {ranked[(sampler, loss)]:.3f})"
            )
        # best configurations on the first row, worst on the second, as in the paper's figure
        paths.append(embed_runs(dirs, out_dir / embedding_file(dataset), method, titles, cols=k_eff))
    return paths
