"""The analysis plan of a study: fixed before any run, stored in the study folder, read by the report.

Study-file keys (docs/method.md, "Statistics of a report"):

- ``primary_metric`` (default ``balanced_accuracy``): the one metric the choice and its
  confirmation are about; any name of the METRICS table;
- ``equivalence_margin`` (default 0.02, absolute on the primary's scale): differences inside
  +-margin count as "as good";
- ``harm_margin`` (default 0.02): how much worse than the baseline a secondary metric may get.

``imbal grid`` writes the plan into the study folder before the first cell and refuses a different
plan on that folder later; ``imbal report`` reads it, so the plan cannot drift after the results are in.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imbal.engine import run_dir as rd
from imbal.errors import ConfigError, RunFolderError
from imbal.metrics import METRICS
from imbal.study.analysis.outputs import BASELINE
from imbal.study.analysis.stats import ADJUST_METHODS

# 2 points of balanced accuracy: about the smallest change in per-class recall that would move a
# clinical choice; below it, two configurations are "as good" (docs/method.md)
DEFAULT_MARGIN = 0.02
# study-file key -> Plan field
KEYS = {"primary_metric": "primary", "equivalence_margin": "margin", "harm_margin": "harm_margin"}


def sign_of(metric: str) -> float:
    """+1 when higher is better on ``metric``, -1 when lower is."""
    return 1.0 if METRICS[metric].higher_is_better else -1.0


@dataclass(frozen=True)
class Plan:
    """The pre-specified analysis: primary metric, margins, level and the secondary families' correction."""

    primary: str = "balanced_accuracy"
    margin: float = DEFAULT_MARGIN
    harm_margin: float = DEFAULT_MARGIN
    alpha: float = 0.05
    correction: str = "holm"
    baseline: tuple[str, str] = BASELINE

    def __post_init__(self) -> None:
        compared = [k for k, m in METRICS.items() if m.compared]
        if self.primary not in compared:
            # the rule's statistics need a metric of every run's confusion matrix, higher is better
            raise ValueError(f"primary_metric must be one of {compared}, got {self.primary!r}")
        m = METRICS[self.primary]
        span = m.high - m.low
        for key, value in (("equivalence_margin", self.margin), ("harm_margin", self.harm_margin)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not 0 < value < span / 2
            ):
                raise ValueError(
                    f"{key} must be a number in (0, {span / 2:g}) (absolute, on the metric's scale), got {value!r}"
                )
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"alpha must lie in (0, 0.5), got {self.alpha}")
        if self.correction not in ADJUST_METHODS:
            raise ValueError(f"correction must be one of {ADJUST_METHODS}, got {self.correction!r}")

    @property
    def secondary(self) -> list[str]:
        return [k for k, m in METRICS.items() if m.compared and k != self.primary]

    @property
    def sign(self) -> float:
        """+1 when higher is better on the primary, -1 when lower is."""
        return sign_of(self.primary)

    def stored(self) -> dict[str, Any]:
        """The study-file keys of this plan (what the folder keeps)."""
        return {key: getattr(self, attr) for key, attr in KEYS.items()}


def plan_from(values: dict[str, Any], where: str) -> Plan:
    """A plan from study-file keys (absent keys take their defaults); bad values are one-line errors."""
    try:
        return Plan(**{attr: values[key] for key, attr in KEYS.items() if key in values})
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


CHECKSUM = "sha256"  # of the plan's keys as written: an edit after the runs began shows


def _checksum(stored: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(stored, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class StoredPlan:
    """A study folder's plan.json: the plan, and whether the file is as it was written."""

    plan: Plan
    edited: bool  # its checksum does not match its keys (a file from before checksums never says so)


def read_stored_plan(root: Path) -> StoredPlan | None:
    """The plan a study folder was run with, or None for a folder from before plans were stored."""
    path = Path(root) / rd.PLAN_FILE
    if not path.is_file():
        return None
    data = rd.read_json(path)
    checksum = data.pop(CHECKSUM, None)
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise RunFolderError(f"{path} has unknown keys {unknown}; expected {', '.join(KEYS)}")
    plan = plan_from(data, str(path))
    return StoredPlan(plan, checksum is not None and checksum != _checksum(plan.stored()))


def read_plan(root: Path) -> Plan | None:
    """The plan a study folder was run with (None: from before plans were stored)."""
    stored = read_stored_plan(root)
    return stored.plan if stored is not None else None


def write_plan(root: Path, plan: Plan) -> None:
    """Stores ``plan`` in a study folder; a folder planned otherwise is refused (nothing is changed)."""
    old = read_plan(root)
    if old is not None and old.stored() != plan.stored():
        changed = ", ".join(
            f"{k} {old.stored()[k]!r} -> {plan.stored()[k]!r}"
            for k in KEYS
            if old.stored()[k] != plan.stored()[k]
        )
        raise RunFolderError(
            f"{root} was planned with other analysis settings ({changed}); a plan is fixed before the runs. "
            "Use a new --out folder, or keep the plan and read the other analysis with "
            "`imbal report DIR --primary-metric ...` (it is then labelled post hoc)"
        )
    if old is None:
        Path(root).mkdir(parents=True, exist_ok=True)
        stored = plan.stored()
        rd.write_json(Path(root) / rd.PLAN_FILE, {**stored, CHECKSUM: _checksum(stored)})


def resolve_plan(root: Path, overrides: dict | None = None, correction: str = "holm") -> tuple[Plan, str]:
    """The study's stored plan with any report-time ``overrides`` (study-file keys), and how to describe it.

    A report is labelled POST HOC when it changes the stored plan, when it gives a plan to a folder
    that stored none, and when plan.json was edited after it was written (its checksum).
    """
    stored = read_stored_plan(root)
    base = stored.plan.stored() if stored is not None else {}
    changed = {k: v for k, v in (overrides or {}).items() if v is not None and base.get(k) != v}
    plan = plan_from({**base, **(overrides or {})} if overrides else base, "imbal report")
    plan = Plan(plan.primary, plan.margin, plan.harm_margin, correction=correction)
    if changed:
        what = (
            "gives this folder, which stored no plan, the plan"
            if stored is None
            else "changes the stored plan"
        )
        return plan, (
            f"POST HOC: this report {what} ("
            + ", ".join(f"{k} {base.get(k)!r} -> {v!r}" for k, v in changed.items())
            + "); its verdicts were not pre-specified. "
        )
    if stored is None:
        return plan, "No analysis plan is stored in this folder (it predates plans): the defaults are used. "
    if stored.edited:
        return plan, (
            "POST HOC: plan.json was edited after it was written (its checksum does not match its keys); "
            "its verdicts may not have been pre-specified. "
        )
    return plan, "The analysis plan was stored before the runs (plan.json). "
