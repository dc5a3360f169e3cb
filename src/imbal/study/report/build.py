"""``imbal report DIR``: findings first, then context, paper-layout tables, corrected statistics and figures.

The study folder is read once (:func:`~imbal.study.report.collect.collect_study`: every run's
metrics and outputs, checked) and every decision is made before the first file is written, so a
damaged run or an edited race file stops the report with one line and leaves the folder as it was.
Each data set (one test set) gets its own section; nothing is paired or averaged across test sets.
Every section is one function of :mod:`imbal.study.report.sections` that returns its blocks and
writes its own CSV and figure files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imbal.engine import run_dir as rd
from imbal.errors import ConfigError
from imbal.metrics import METRICS
from imbal.study.analysis.archive import write_archive
from imbal.study.analysis.decision import Decision, decide
from imbal.study.analysis.plan import Plan, resolve_plan
from imbal.study.race.folder import race_from_folder
from imbal.study.report.collect import Study, collect_study, failed_runs, unfinished_runs
from imbal.study.report.data import DatasetReport
from imbal.study.report.render import Block, to_html, to_markdown
from imbal.study.report.sections import comparisons, context, features, findings, metrics, reliability
from imbal.study.report.sections.race import race_section
from imbal.study.report.sections.section import Section

REPORT_MD, REPORT_HTML, RUNS_CSV, ARCHIVE, TABLES, FIGURES = (
    "report.md",
    "report.html",
    "runs.csv",
    "outputs.npz",  # every run's validation and test predictions (imbal.study.analysis.archive)
    "tables",
    "figures",
)
# what runs.csv leaves out of collect_runs' table: lists and mappings, which a CSV cell cannot hold
NOT_IN_RUNS_CSV = ["class_names", "f1_per_class", "confusion_matrix", "config", "dataset_info"]


@dataclass
class Report:
    """What :func:`make_report` wrote; its answer (the race's section and each data set's findings) and
    each data set's parts by name (what `imbal recommend` and `make demo` print, never cut out of text)."""

    markdown: Path
    html: Path
    tables: Path
    plan: Plan
    answer: list[Block]
    parts: dict[str, dict[str, list[Block]]]  # data set -> part name -> its blocks, in page order

    def text(self, blocks: list[Block]) -> str:
        """Blocks of this report as Markdown (image paths relative to the report's folder)."""
        return to_markdown(blocks, self.markdown.parent).rstrip()


def _decision(data: DatasetReport, plan: Plan) -> tuple[Decision | None, str]:
    """The findings' decision, or None and why (the runs hold nothing to decide: said in the section)."""
    try:
        return decide(data.outputs, plan), ""
    except ValueError as exc:
        return None, str(exc)


def findings_part(s: Section, reason: str) -> list[Block]:
    """A data set's heading and findings: which configuration to use, by how much, how sure."""
    decision = s.decision
    blocks = [Block("h2", s.dataset + (" (SYNTHETIC data)" if s.data.synthetic else ""))]
    if s.data.synthetic:
        blocks.append(
            Block(
                "note",
                "These runs used the built-in SYNTHETIC set, not real images: the numbers test the pipeline, not the losses.",
            )
        )
    if decision is None:
        blocks.append(Block("note", f"No findings for {s.dataset}: {reason}."))
    else:
        blocks += findings.findings_blocks(s, decision)
    return blocks


def details_parts(s: Section, out: Path) -> dict[str, list[Block]]:
    """After the findings, in page order: context, the free baseline, each metric's tables, calibration,
    class-wise F1, comparisons and the feature space; each part by its name."""
    decision = s.decision
    parts = {"context": context.context_blocks(s), "posthoc": context.posthoc_blocks(s)}
    # qwk: ordinal data only; ece and brier (lower is better) are in the calibration part
    for metric in [m for m in METRICS if METRICS[m].higher_is_better and s.runs[m].notna().any()]:
        parts[metric] = metrics.metric_table(s, metric)
        parts[f"{metric} change"] = metrics.metric_change(s, metric)
    recommended = decision.recommendation if decision is not None else None
    parts["calibration"] = reliability.calibration_blocks(s, recommended or s.plan.baseline)
    parts["class_f1"] = metrics.class_f1_section(s)
    parts["comparisons"] = comparisons.comparisons_section(s) if decision is not None else []
    parts["feature_space"] = features.feature_space_section(s)
    parts["confusion"] = metrics.confusion_section(s)
    parts["embedding"] = features.embedding_section(s, out)
    return parts


def _relative(path: str, root: Path) -> str:
    """A run folder relative to the study folder: committed reports name no machine's paths."""
    p = Path(path)
    return p.relative_to(root).as_posix() if p.is_relative_to(root) else str(path)


def _header(study: Study, plan: Plan, plan_note: str) -> list[Block]:
    """Title, what the folder holds, the plan, and the cells left out (failed, unfinished, split)."""
    root = study.root
    failed = [_relative(p, root) for p in failed_runs(root)]
    unfinished = [_relative(p, root) for p in unfinished_runs(root)]
    datasets = [d.key for d in study.datasets]
    blocks = [
        Block("h1", f"imbal study report: {root.name}"),
        Block(
            "p",
            f"{len(study.runs)} finished runs in this study folder. Data sets: {', '.join(datasets)}. {plan_note}"
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
    split = study.split_by_settings
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
) -> Report:
    """Write ``report.md``, ``report.html``, ``outputs.npz``, ``runs.csv``, ``tables/*.csv`` and ``figures/*.png``.

    ``overrides`` (``primary_metric``, ``equivalence_margin``, ``harm_margin``) replace the stored
    plan for this report only, which then says it is post hoc.
    """
    root = Path(root)
    out = Path(out) if out else root
    plan, plan_note = resolve_plan(root, overrides, correction)
    study = collect_study(root, plan.baseline)
    race = race_from_folder(root)
    decided = {d.key: _decision(d, plan) for d in study.datasets}
    # a grid without the baseline (an ablation) still gets its tables; one configuration alone does not
    if all(dec is None for dec, _ in decided.values()) and all(
        len(d.outputs.configs) < 2 for d in study.datasets
    ):
        raise ConfigError(
            f"nothing to compare in {root}: one configuration per data set; a report needs two or more "
            f"(findings need the baseline {plan.baseline[0]} / {plan.baseline[1]} trained with the same seeds)"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_archive({d.key: d.outputs for d in study.datasets}, out / ARCHIVE)
    frame = study.runs.drop(columns=NOT_IN_RUNS_CSV)
    frame["run_dir"] = [_relative(p, root) for p in frame.run_dir]
    frame.to_csv(out / RUNS_CSV, index=False)
    answer = race_section(race, out / FIGURES, out / TABLES, rd.safe_name(root.name)) if race else []
    blocks = _header(study, plan, plan_note) + answer
    parts = {}
    for data in study.datasets:
        decision, reason = decided[data.key]
        s = Section(data, plan, decision, out / TABLES, out / FIGURES)
        parts[data.key] = {"findings": findings_part(s, reason), **details_parts(s, out)}
        answer = answer + parts[data.key]["findings"]
        blocks += [b for part in parts[data.key].values() for b in part]
    md, page = out / REPORT_MD, out / REPORT_HTML
    rd.atomic_write_text(md, to_markdown(blocks, out))
    rd.atomic_write_text(page, to_html(blocks, f"imbal report: {root.name}"))
    return Report(md, page, out / TABLES, plan, answer, parts)
