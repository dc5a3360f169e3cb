"""``imbal report DIR``: findings first, then context, paper-layout tables, corrected statistics and figures.

Each data set (one test set) gets its own section; nothing is paired or averaged across test sets.
Every section is one function that returns its blocks and writes its own CSV and figure files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from imbal.engine import run_dir as rd
from imbal.errors import ConfigError
from imbal.metrics import METRICS
from imbal.study.analysis.decision import Decision, decide
from imbal.study.analysis.outputs import from_run_folders
from imbal.study.analysis.plan import Plan, resolve_plan
from imbal.study.analysis.stats import Verdict
from imbal.study.race.runner import history_rows, race_from_folder
from imbal.study.report import figures, tables
from imbal.study.report.archive import write_archive
from imbal.study.report.collect import collect_runs, failed_runs, unfinished_runs
from imbal.study.report.embed import embedding_file
from imbal.study.report.render import Block, to_html, to_markdown
from imbal.study.report.sections import findings
from imbal.study.report.sections import reliability as calibration
from imbal.study.report.sections.common import Section, cells_text, class_f1_section, comparisons_section
from imbal.study.report.sections.features import tightness_table
from imbal.study.report.sections.race import race_blocks

REPORT_MD, REPORT_HTML, RUNS_CSV, ARCHIVE, TABLES, FIGURES = (
    "report.md",
    "report.html",
    "runs.csv",
    "outputs.npz",  # every run's validation and test predictions (imbal.study.report.archive)
    "tables",
    "figures",
)


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


def metric_section(s: Section, metric: str) -> list[Block]:
    m = METRICS[metric]
    mean, std, n = tables.summary(s.runs, metric)
    s.csv(pd.concat({"mean": mean, "std": std, "n": n}, axis=1), metric, index=True)
    blocks = [
        Block("h3", m.label),
        Block("p", f"Test split, {cells_text(s)}; best cell in bold."),
        _table_block(mean, std, n),
    ]
    if m.chance_note:
        blocks.append(Block("p", findings.chance_note(s.runs)))
    rel = tables.relative_change(mean, s.plan.baseline)
    if rel is not None:
        s.csv(rel, f"{metric}_relative", index=True)
        blocks += [
            Block("p", f"Relative change of the mean against {findings.name(s.plan.baseline)} ({m.label}):"),
            _table_block(rel),
        ]
    blocks.append(Block("image", f"{m.label}: sampler x loss", path=_metric_figure(s, metric, mean)))
    return blocks


MARKS = {
    Verdict.BETTER: "better",
    Verdict.WORSE: "worse",
    Verdict.EQUIVALENT: "equiv.",
    Verdict.INCONCLUSIVE: "n.s.",
    Verdict.NOT_TESTED: "n.t.",
}


def _metric_figure(s: Section, metric: str, mean: pd.DataFrame) -> Path:
    m = METRICS[metric]
    path = s.figures / f"{s.key}_{metric}_heatmap.png"
    cmp = s.comparisons
    base = s.plan.baseline
    if cmp.empty or metric not in set(cmp.metric) or base[0] not in mean.index or base[1] not in mean.columns:
        return figures.heatmap(mean, f"{s.dataset}: {m.label} (test, {cells_text(s)})", path, m.low, m.high)
    diff = mean - mean.loc[base]
    marks = pd.DataFrame("", index=mean.index, columns=mean.columns, dtype=object)
    for r in cmp[cmp.metric == metric].itertuples():
        marks.loc[r.sampler, r.loss] = MARKS[Verdict(r.verdict)] + (" (1 seed)" if r.seeds < 2 else "")
    marks.loc[base] = "baseline"
    finite = np.abs(diff.to_numpy(dtype=float))
    limit = max(0.05, float(np.ceil(np.nanmax(finite) * 20) / 20)) if np.isfinite(finite).any() else 0.05
    role = "primary" if metric == s.plan.primary else "secondary"
    title = f"{s.dataset}: {m.label} ({role}), change vs {findings.name(base)} (n.s. = not significant, n.t. = not tested)"
    return figures.difference_heatmap(diff, marks, title, path, limit)


def posthoc_section(s: Section) -> list[Block]:
    post = tables.posthoc_table(s.runs)
    s.csv(post, "posthoc")
    return findings.posthoc_blocks(post, s.plan.baseline)


def feature_space_section(s: Section) -> list[Block]:
    tight = tightness_table(s.runs)
    s.csv(tight, "feature_tightness")
    minority = int(s.runs.minority_class.iloc[0])
    t = tight[tight["class"] == minority].groupby(["sampler", "loss"], sort=False)[
        ["silhouette", "knn_purity"]
    ]
    mean, std = t.mean(), t.std(ddof=1)
    rows = [
        [
            f"{c[0]} / {c[1]}",
            *[
                tables.format_cell(mean.loc[c, k], std.loc[c, k], s.seeds)
                for k in ("silhouette", "knn_purity")
            ],
        ]
        for c in tables.configurations(s.runs)
    ]
    text = (
        f"How tightly the rarest class {findings.minority_label(s.runs)} clusters in the penultimate test features "
        "(standardised; silhouette against the nearest other class, and the share of its 10 nearest neighbours "
        f"with its label), {cells_text(s)}. Measured on the features, not on the t-SNE picture."
    )
    return [
        Block("h3", "Feature space of the rarest class"),
        Block("p", text),
        Block("table", header=["configuration", "silhouette", "10-NN purity"], rows=rows),
    ]


def confusion_section(s: Section) -> list[Block]:
    shown = (s.decision.alternative if s.decision else None) or s.plan.baseline
    sel = s.runs[(s.runs.sampler == shown[0]) & (s.runs.loss == shown[1])]
    if sel.empty:
        return []
    cm = np.sum([np.array(c) for c in sel.confusion_matrix], axis=0)
    path = figures.confusion(
        cm,
        findings.class_names(s.runs),
        f"{s.dataset}: {findings.name(shown)} ({len(sel)} seeds)",
        s.figures / f"{s.key}_confusion.png",
    )
    return [
        Block("h3", f"Confusion matrix of the alternative chosen on validation ({findings.name(shown)})"),
        Block("image", "Confusion matrix (test, summed over seeds)", path=path),
    ]


def embedding_section(s: Section, out: Path) -> list[Block]:
    path = out / embedding_file(s.dataset)
    if not path.is_file():
        return [
            Block(
                "p",
                "No feature map yet: run `imbal embed STUDY --best-worst 3` on this folder and report again.",
            )
        ]
    return [
        Block("h3", "Feature space (t-SNE of penultimate test features)"),
        Block(
            "image",
            "best and worst configurations chosen by mean test macro F1; each panel shows the median seed",
            path=path,
        ),
    ]


def _decision(d: pd.DataFrame, plan: Plan) -> Decision:
    """The findings' decision; ValueError when the runs hold nothing to decide (said in the section)."""
    runs = [((r.sampler, r.loss), int(r.seed), Path(r.run_dir)) for r in d.itertuples()]
    outputs = from_run_folders(
        runs,
        len(d.f1_per_class.iloc[0]),
        int(d.minority_class.iloc[0]),
        findings.class_names(d),
        baseline=plan.baseline,
    )
    return decide(outputs, plan)


def dataset_section(runs: pd.DataFrame, dataset: str, out: Path, plan: Plan) -> tuple[list[Block], bool]:
    """A data set's blocks, and whether it held a decision (a comparison with the baseline)."""
    d = runs[runs.dataset == dataset]
    try:
        decision, reason = _decision(d, plan), ""
    except ValueError as exc:
        decision, reason = None, str(exc)
    s = Section(d, dataset, out / TABLES, out / FIGURES, plan, decision)
    blocks = [Block("h2", dataset + (" (SYNTHETIC data)" if d.synthetic.any() else ""))]
    if d.synthetic.any():
        blocks.append(
            Block(
                "note",
                "These runs used the built-in SYNTHETIC set, not real images: the numbers test the pipeline, not the losses.",
            )
        )
    if decision is None:
        blocks.append(Block("note", f"No findings for {dataset}: {reason}."))
    else:
        blocks += findings.findings_blocks(decision, d)
    blocks += findings.context_blocks(d)
    blocks += posthoc_section(s)
    tabled = [m for m in METRICS if METRICS[m].higher_is_better and d[m].notna().any()]  # qwk: ordinal only
    for metric in tabled:  # ece and brier (lower is better) are in the calibration section
        blocks += metric_section(s, metric)
    recommended = decision.recommendation if decision is not None else None
    blocks += calibration.calibration_blocks(s, recommended or plan.baseline, plan.baseline)
    blocks += class_f1_section(s)
    if decision is not None:
        blocks += comparisons_section(s)
    blocks += feature_space_section(s)
    blocks += confusion_section(s)
    blocks += embedding_section(s, out)
    return blocks, decision is not None


def _relative(path: str, root: Path) -> str:
    """A run folder relative to the study folder: committed reports name no machine's paths."""
    p = Path(path)
    return p.relative_to(root).as_posix() if p.is_relative_to(root) else str(path)


def _header(root: Path, runs: pd.DataFrame, plan: Plan, plan_note: str) -> list[Block]:
    """Title, what the folder holds, the plan, and the cells left out (failed, unfinished, split)."""
    failed = [_relative(p, root) for p in failed_runs(root)]
    unfinished = [_relative(p, root) for p in unfinished_runs(root)]
    datasets = sorted(runs.dataset.unique())
    blocks = [
        Block("h1", f"imbal study report: {root.name}"),
        Block(
            "p",
            f"{len(runs)} finished runs in this study folder. Data sets: {', '.join(datasets)}. {plan_note}"
            f"Primary metric: {METRICS[plan.primary].label}.",
        ),
    ]
    for cells, what in (
        (failed, "failed (see their error.txt)"),
        (unfinished, "started but did not finish (killed, or still training)"),
    ):
        if cells:
            blocks.append(
                Block(
                    "note",
                    f"{len(cells)} run(s) {what} and are left out: {', '.join(cells[:5])}"
                    + (" ..." if len(cells) > 5 else ""),
                )
            )
    split = runs.attrs.get("split_by_settings") or []
    if split:
        blocks.append(
            Block(
                "note",
                f"Runs of {', '.join(split)} were trained with different settings (a study edited between runs); "
                "each setting is reported as its own data set and no finding pools them.",
            )
        )
    return blocks


def make_report(
    root: str | Path,
    out: str | Path | None = None,
    correction: str = "holm",
    overrides: dict | None = None,
) -> dict[str, Path]:
    """Write ``report.md``, ``report.html``, ``outputs.npz``, ``tables/*.csv`` and ``figures/*.png`` for a study folder.

    ``overrides`` (``primary_metric``, ``equivalence_margin``, ``harm_margin``) replace the stored
    plan for this report only, which then says it is post hoc.
    """
    root = Path(root)
    out = Path(out) if out else root
    out.mkdir(parents=True, exist_ok=True)
    plan, plan_note = resolve_plan(root, overrides, correction)
    runs = collect_runs(root)
    frame = runs.drop(columns=["class_names", "f1_per_class", "confusion_matrix", "config", "dataset_info"])
    frame["run_dir"] = [_relative(p, root) for p in frame.run_dir]
    write_archive(runs, out / ARCHIVE)  # reads (and checks) every run's outputs before anything is written
    frame.to_csv(out / RUNS_CSV, index=False)
    blocks = _header(root, runs, plan, plan_note)
    race = race_from_folder(root)
    if race is not None:
        state, rules, configs = race
        blocks += race_blocks(state, rules, configs, out / FIGURES, rd.safe_name(root.name))
        (out / TABLES).mkdir(parents=True, exist_ok=True)
        pd.DataFrame(history_rows(state)).to_csv(out / TABLES / "race_history.csv", index=False)
    decided = []
    for dataset in sorted(runs.dataset.unique()):
        section, ok = dataset_section(runs, dataset, out, plan)
        blocks += section
        decided.append(ok)
    # a grid without the baseline (an ablation) still gets its tables; one configuration alone does not
    if not any(decided) and all(len(set(zip(g.sampler, g.loss))) < 2 for _, g in runs.groupby("dataset")):
        raise ConfigError(
            f"nothing to compare in {root}: one configuration per data set; a report needs two or more "
            f"(findings need the baseline {plan.baseline[0]} / {plan.baseline[1]} trained with the same seeds)"
        )
    md, page = out / REPORT_MD, out / REPORT_HTML
    rd.atomic_write_text(md, to_markdown(blocks, out))
    rd.atomic_write_text(page, to_html(blocks, f"imbal report: {root.name}"))
    return {"markdown": md, "html": page, "tables": out / TABLES}
