"""The study's verdict for a run's configuration, for its model card (read only; the report's own analysis).

A run inside a study folder (``<study>/runs/<data>/<sampler>/<loss>/seed<k>``, the grid's and the
race's layout) is read with its study as ``imbal report`` reads it: the stored plan
(:func:`~imbal.study.analysis.plan.resolve_plan`), every finished run
(:func:`~imbal.study.report.collect.collect_study`) and the rule
(:func:`~imbal.study.analysis.decision.decide`). Nothing is written into the study. Intervals are
written as the report writes them, so the card's numbers can be found in ``report.md``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from imbal.engine import run_dir as rd
from imbal.errors import UserError
from imbal.metrics import METRICS
from imbal.study.analysis.decision import Decision, decide
from imbal.study.analysis.outputs import Config
from imbal.study.analysis.plan import Plan, resolve_plan
from imbal.study.analysis.stats import Estimate
from imbal.study.report.collect import collect_study, failed_runs, unfinished_runs
from imbal.study.report.data import DatasetReport


def file_name(text: str) -> str:
    """A path-like string's last part; other text as it is."""
    return Path(text.replace("\\", "/")).name if ("/" in text or "\\" in text) else text


def scrub(text: str) -> str:
    """Free text (a data set's key, a message) with every absolute path cut to its last part."""
    return re.sub(
        r"(?<![\w.])(?:[A-Za-z]:)?(?:[/\\][^\s/\\,;:()'\"]+)+", lambda m: file_name(m.group(0)), text
    )


def study_root(run: Path) -> Path | None:
    """The study folder that holds ``run`` as one of its cells, or None."""
    run = Path(os.path.abspath(run))
    if len(run.parts) < 6 or not run.name.startswith("seed") or run.parents[3].name != rd.RUNS:
        return None
    try:
        seed = int(run.name.removeprefix("seed"))
    except ValueError:
        return None
    root = run.parents[4]
    label, sampler, loss = run.parts[-4:-1]
    return root if rd.cell_dir(root, label, sampler, loss, seed) == run else None


def name(config: Config) -> str:
    return f"{config[0]} / {config[1]}"


def interval(est: Estimate, plan: Plan) -> str:
    """A difference with its interval and p-value, as the report's findings write it."""
    low, high = est.interval(1 - plan.alpha)
    return (
        f"{est.difference:+.3f} ({1 - plan.alpha:.0%} CI [{low:+.3f}, {high:+.3f}], "
        f"p = {max(est.p_value, 1e-4):.3g})"
    )


def _clean(text: str, root: Path) -> str:
    """A message without the machine's paths: the study's as its name, any other cut to its last part."""
    for prefix in {str(root), os.path.abspath(root), os.path.realpath(root)}:
        text = text.replace(prefix, root.name)
    return scrub(text)


def _dataset_of(run: Path, datasets: list[DatasetReport]) -> DatasetReport | None:
    mine = os.path.realpath(run)
    return next((d for d in datasets if mine in {os.path.realpath(p) for p in d.runs.run_dir}), None)


def _confirmation(d: Decision) -> list[str]:
    conf, plan = d.confirmation, d.plan
    if conf is None:
        return [
            f"- No alternative to {name(d.baseline)} passed the validation screens: nothing was confirmed on test."
        ]
    choices = sorted({name(c) for c in conf.fold_choices})
    return [
        f"- Confirmation on test ({METRICS[plan.primary].label.lower()}, the validation choice {', '.join(choices)} "
        f"against {name(d.baseline)}, cross-fitted over {len(conf.seeds)} seeds): {interval(conf.estimate, plan)}; "
        f"verdict: **{conf.verdict}**; equivalence within ±{plan.margin:g}: TOST p = "
        f"{max(conf.estimate.p_equivalence(plan.margin), 1e-4):.3g}."
    ]


def _own_rows(d: Decision, config: Config) -> list[str]:
    if config == d.baseline:
        return [
            f"- This configuration is the study's baseline ({name(d.baseline)}): every comparison is against it."
        ]
    lines = []
    for metric in (d.plan.primary, "minority_f1"):
        row = d.row(metric, config)
        if row is None:
            continue
        judged = f"verdict: {row.verdict}" + (
            f", non-inferiority: {row.non_inferiority}" if row.non_inferiority else ""
        )
        lines.append(
            f"- This configuration against {name(d.baseline)} on test, {METRICS[metric].label.lower()} "
            f"({row.role}, {row.seeds} seeds): {row.difference:+.3f} [{row.ci_low:+.3f}, {row.ci_high:+.3f}]; "
            f"{judged}."
        )
    return lines or [
        "- This configuration has not every seed of the baseline: it is left out of the comparisons."
    ]


def verdict_lines(run: Path, config: Config) -> list[str]:
    """The card's study section for the run of ``config``; a run outside a study says so."""
    root = study_root(run)
    if root is None:
        return [
            "This run is not a cell of a study folder: no comparison with other configurations or seeds backs it "
            "(`imbal grid` / `imbal recommend`, then `imbal report`, give one)."
        ]
    try:
        plan, note = resolve_plan(root)
        study = collect_study(root, plan.baseline)
    except UserError as exc:
        return [f"The study folder `{root.name}` could not be read: {_clean(str(exc), root)}"]
    data = _dataset_of(run, study.datasets)
    if data is None:
        return [f"The study folder `{root.name}` does not list this run among its finished runs."]
    try:
        d = decide(data.outputs, plan, planning=False)
    except ValueError as exc:
        return [
            f"The study `{root.name}` gives no verdict for {_clean(data.key, root)}: {_clean(str(exc), root)}."
        ]
    lines = [
        f"This run is seed {run.name.removeprefix('seed')} of **{name(config)}** in the study `{root.name}` "
        f"({len(data.runs)} finished runs of {_clean(data.key, root)}; {len(d.grid.configs)} configurations with seeds "
        f"{', '.join(map(str, d.seeds))} compared). {note}",
        "",
        f"- The study's recommendation: **{name(d.recommendation)}**"
        + (" (this configuration)" if d.recommendation == config else "")
        + (
            ": no alternative was confirmed better on test, so the baseline stays (that is no evidence that "
            "it is the best configuration)."
            if d.recommendation == d.baseline
            else ": confirmed better than the baseline on test."
        ),
        *_confirmation(d),
        *_own_rows(d, config),
    ]
    left = len(unfinished_runs(root)) + len(failed_runs(root))
    if left:
        lines.append(
            f"- {left} run(s) of the study had not finished or failed: the verdict is of the finished runs."
        )
    return lines
