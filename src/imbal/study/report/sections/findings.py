"""The part of a report a user reads first: which configuration to use, by how much, how sure.

The words follow the decision of :mod:`imbal.study.analysis.decision` (choice on validation, one confirmation
on test). "As good a choice" is written only after an equivalence test; an inconclusive result says
what is unknown and how many seeds would decide it.
"""

from __future__ import annotations

import math

import pandas as pd

from imbal.metrics import METRICS
from imbal.study.analysis.decision import Decision, NonInferiority
from imbal.study.analysis.outputs import Config
from imbal.study.analysis.plan import Plan
from imbal.study.analysis.stats import MAX_SEEDS, Verdict
from imbal.study.report.render import Block
from imbal.study.report.sections.section import Section
from imbal.study.report.sections.section import config_name as name

CORRECTIONS = {"holm": "Holm (family-wise error 5%)", "bh": "Benjamini-Hochberg (false discovery rate 5%)"}
ONE_SEED = "test images only, 1 seed"


def rule_text(plan: Plan, baseline: Config) -> str:
    label = METRICS[plan.primary].label.lower()
    secondary = ", ".join(METRICS[m].label.lower() for m in plan.secondary)
    return (
        f"Pre-specified: primary metric {label}; equivalence margin ±{plan.margin:g}; harm margin {plan.harm_margin:g} "
        f"on the secondary metrics ({secondary}). Rule: on the validation split, leave out every configuration "
        f"that zeroed a class in more than half of its seeds or is worse than {name(baseline)} on a secondary "
        f"metric by more than the harm margin (one-sided 95%); the best mean validation {label} among the rest "
        "is the choice (ties to the simplest). The test split is used once: to confirm the best alternative to "
        f"{name(baseline)} against it, cross-fitted over seeds, with intervals that hold both seed-to-seed and "
        "test-image noise."
    )


def qualify(v: Verdict, one_seed: bool) -> str:
    """A verdict as the report writes it: one seed's firm-sounding verdicts say what they rest on."""
    return (
        f"{v} ({ONE_SEED})"
        if one_seed and v in (Verdict.BETTER, Verdict.WORSE, Verdict.EQUIVALENT)
        else str(v)
    )


def _effect(d: Decision) -> str:
    est = d.confirmation.estimate  # type: ignore[union-attr]
    low, high = est.interval(1 - d.plan.alpha)
    return f"{est.difference:+.3f} (95% CI [{low:+.3f}, {high:+.3f}], p = {max(est.p_value, 1e-4):.3g})"


def _answer(d: Decision) -> str:
    """The first sentence: the recommendation and its evidence."""
    base, alt, conf, plan = d.baseline, d.alternative, d.confirmation, d.plan
    label = METRICS[plan.primary].label.lower()
    base_unstable = d.screens[base].unstable
    if alt is None or conf is None:
        if base_unstable:
            return (
                f"No configuration qualifies: {name(base)} zeroed a class on validation in most seeds and every "
                "other configuration failed a validation screen (see the table below)."
            )
        return f"Stay with {name(base)}: no other configuration passed the validation screens (see the table below)."
    v, effect = conf.verdict, _effect(d)
    what = f"{name(alt)}, the best alternative on validation,"
    if v is Verdict.BETTER:
        return f"Use {name(alt)}: chosen on validation, it is better than {name(base)} on test, {label} {effect}."
    if v is Verdict.WORSE:
        tail = (
            f" {name(base)} itself zeroed a class on validation in most seeds, so no configuration qualifies."
            if base_unstable
            else ""
        )
        return f"Stay with {name(base)}: {what} is worse on test, {label} {effect}.{tail}"
    if v is Verdict.EQUIVALENT:
        pick = alt if base_unstable else base
        why = (
            f"{name(base)} zeroed a class on validation in most seeds"
            if base_unstable
            else f"prefer the simpler, {name(base)}"
        )
        return (
            f"Either is as good a choice on {label}: {what} and {name(base)} are equivalent within ±{plan.margin:g} "
            f"on test ({effect}, TOST p = {conf.estimate.p_equivalence(plan.margin):.3g}); {why}. Use {name(pick)}."
        )
    unknown = (
        f"neither a difference nor equivalence within ±{plan.margin:g} is shown. {_planning_sentence(d)}"
    )
    if base_unstable:
        return (
            f"Use {name(alt)} for now, undecided: {name(base)} zeroed a class on validation in most seeds, so it "
            f"is not the default; on test {what} differs from it by {effect} on {label}: {unknown}"
        )
    if d.chosen == base:
        return (
            f"Stay with {name(base)}: it had the best validation {label}; {what} differs from it on test by "
            f"{effect}: {unknown}"
        )
    return f"Undecided: {what} differs from {name(base)} on test by {label} {effect}: {unknown}"


def _planning_sentence(d: Decision) -> str:
    if d.one_seed or d.planning is None or d.planning.one_seed:
        return "With one seed the seed-to-seed spread is unknown: run at least 3 seeds."
    est = d.confirmation.estimate  # type: ignore[union-attr]
    target = "equivalence" if d.planning.goal == "equivalence" else "the difference"
    if d.planning.seeds is None:
        floor = math.sqrt(est.image_var)
        cause = (
            f" (the test set's own noise alone has a standard error of {floor:.3f}: a larger test set is needed)"
            if floor > 0 and floor * 2.8 > abs(est.difference)
            else ""
        )
        return f"More than {MAX_SEEDS} seeds would be needed to show {target} with 80% power{cause} (planning estimate)."
    return (
        f"About {d.planning.seeds} seeds would show {target} with 80% power (planning estimate from the observed "
        "effect and spread)."
    )


def _confirmation_table(s: Section, d: Decision) -> Block | None:
    alt, conf = d.alternative, d.confirmation
    if alt is None or conf is None:
        return None
    base, chosen = s.data.runs_of(d.baseline), s.data.runs_of(alt)
    rows = []
    for metric in [d.plan.primary, *d.plan.secondary]:
        label = METRICS[metric].label + (f" ({s.facts.minority_label})" if metric == "minority_f1" else "")
        if metric == d.plan.primary:
            est = conf.estimate
            role = "primary (confirmatory)"
            verdict = qualify(conf.verdict, d.one_seed)
        else:
            row = d.row(metric, alt)
            if row is None:
                continue
            est = None
            role = "secondary"
            verdict = f"{row.non_inferiority} (harm margin {d.plan.harm_margin:g})"
        if est is not None:
            low, high = est.interval(1 - d.plan.alpha)
            diff, p = est.difference, est.p_value
        else:
            diff, low, high, p = row.difference, row.ci_low, row.ci_high, row.p_value
        # the primary's alternative is what the cross-fitted folds chose: baseline + their effect
        alt_value = base[metric].mean() + diff if est is not None else chosen[metric].mean()
        rows.append(
            [
                label,
                role,
                f"{base[metric].mean():.3f}",
                f"{alt_value:.3f}",
                f"{diff:+.3f}",
                f"[{low:+.3f}, {high:+.3f}]",
                f"{p:.3f}",
                verdict,
            ]
        )
    alt_name = name(alt) if conf.stable else f"{name(alt)} (folds: see the note)"
    header = ["metric", "role", name(d.baseline), alt_name, "difference", "95% CI", "p", "verdict"]
    return Block("table", header=header, rows=rows)


def _validation_table(d: Decision) -> Block:
    label = METRICS[d.plan.primary].label
    rows = []
    order = sorted(d.grid.configs, key=lambda c: -d.plan.sign * d.validation_means[c])
    for c in order:
        sc = d.screens[c]
        status = []
        if sc.unstable:
            status.append("unstable: " + "; ".join(f"seed {s}: {', '.join(k)}" for s, k in sc.zeroed))
        for metric, est in sc.harmed:
            status.append(f"harm: {METRICS[metric].label} {est.difference:+.3f}")
        mark = " (choice)" if c == d.chosen else (" (alternative)" if c == d.alternative else "")
        rows.append(
            [
                name(c) + mark,
                f"{d.validation_means[c]:.3f}",
                "; ".join(status) or "passed",
                str(len(sc.zeroed)),
            ]
        )
    for c in d.grid.left_out:
        rows.append([name(c), "-", "left out: lacks a seed of the baseline", "-"])
    return Block(
        "table",
        header=["configuration", f"validation {label} (mean)", "screens", "seeds with a zeroed class"],
        rows=rows,
    )


def findings_blocks(s: Section, d: Decision) -> list[Block]:
    """What to use, by how much, how sure; then how the choice was made and the evidence it rests on."""
    blocks = [Block("h3", "Findings"), Block("p", _answer(d)), Block("p", rule_text(d.plan, d.baseline))]
    conf = d.confirmation
    if conf is not None and not conf.stable:
        picks = pd.Series([name(c) for c in conf.fold_choices]).value_counts()
        blocks.append(
            Block(
                "note",
                "The validation choice changed when one seed was left out ("
                + ", ".join(f"{k}: {v} of {len(conf.fold_choices)}" for k, v in picks.items())
                + "): the confirmed effect is that of the choice procedure, not of one fixed configuration.",
            )
        )
    if d.alternative is not None and conf is not None:
        harms = d.table[
            (d.table.sampler == d.alternative[0])
            & (d.table.loss == d.alternative[1])
            & (d.table.non_inferiority == NonInferiority.WORSE)
        ]
        for r in harms.itertuples():
            blocks.append(
                Block(
                    "note",
                    f"On test, {name(d.alternative)} is worse than {name(d.baseline)} on {METRICS[r.metric].label} by more "
                    f"than the harm margin: {r.difference:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}].",
                )
            )
    table = _confirmation_table(s, d)
    if table is not None:
        blocks.append(table)
    blocks.append(Block("p", "How the choice was made, on the validation split (best first):"))
    blocks.append(_validation_table(d))
    blocks.append(Block("p", _evidence(s, d)))
    return blocks


def _evidence(s: Section, d: Decision) -> str:
    f = s.facts
    rare = f" (rarest class {f.minority_label}: n = {f.test_counts[f.minority]})" if f.test_counts else ""
    text = (
        f"Evidence: {len(d.seeds)} seed(s) ({', '.join(map(str, d.seeds))}) per configuration, test n = "
        f"{f.sizes['test']}{rare}. The best epoch, the post-hoc tau and the choice used the validation "
        "split only; the test split was read once for the confirmation. Intervals hold seed-to-seed and "
        'test-image noise (docs/method.md, "Statistics of a report").'
    )
    if d.one_seed:
        text += (
            " With one seed the intervals come from the test images only and the choice and the test share the "
            "same runs: no verdict here is firm; run at least 3 seeds."
        )
    return text
