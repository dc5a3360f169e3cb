"""The part of a report a user reads first: which configuration to use, by how much, how sure.

The words follow the decision of :mod:`imbal.study.analysis.decision` (choice on validation, one confirmation
on test). "As good a choice" is written only after an equivalence test; an inconclusive result says
what is unknown and how many seeds would decide it.
"""

from __future__ import annotations

import math

import pandas as pd

from imbal.data.folds import fold_balance
from imbal.metrics import METRICS
from imbal.study.analysis.choice import NonInferiority
from imbal.study.analysis.decision import Decision
from imbal.study.analysis.outputs import Config
from imbal.study.analysis.plan import Plan
from imbal.study.analysis.stats import MAX_SEEDS, Estimate, Verdict
from imbal.study.report.render import Block
from imbal.study.report.sections.section import Section
from imbal.study.report.sections.section import config_name as name

CORRECTIONS = {
    "holm": "Holm (family-wise error {alpha})",
    "bh": "Benjamini-Hochberg (false discovery rate {alpha})",
}


def correction_text(plan: Plan) -> str:
    """The plan's multiplicity correction in words, at its level."""
    return CORRECTIONS[plan.correction].format(alpha=f"{plan.alpha:.0%}")


ONE_SEED = "test images only, 1 seed"


def level(plan: Plan) -> str:
    """The confidence of the plan's intervals, as the report writes it (95% at alpha 0.05)."""
    return f"{1 - plan.alpha:.0%}"


def _unit(d: Decision) -> str:
    """What a report's runs per configuration are: seeds, or a cross-validated study's repeats."""
    return "repeat" if d.grid.folds is not None else "seed"


def rule_text(plan: Plan, baseline: Config, folds: int = 0) -> str:
    """The pre-specified rule in words; ``folds`` > 0: a cross-validated study's (repeats, folds)."""
    label = METRICS[plan.primary].label.lower()
    secondary = ", ".join(METRICS[m].label.lower() for m in plan.secondary)
    units = "repeats" if folds else "seeds"
    cross_fit = (
        "cross-fitted over folds (each fold's alternative is chosen on the validation predictions of its repeat's "
        "other folds, none of them made on its test images or by its own model), with intervals that hold both "
        "fold-to-fold (model) and image noise"
        if folds
        else "cross-fitted over seeds, with intervals that hold both seed-to-seed and test-image noise"
    )
    return (
        f"Pre-specified: primary metric {label}; equivalence margin ±{plan.margin:g}; harm margin {plan.harm_margin:g} "
        f"on the secondary metrics ({secondary}). Rule: on the validation split, leave out every configuration "
        f"that zeroed a class in more than half of its {units} or is worse than {name(baseline)} on a secondary "
        f"metric by more than the harm margin (one-sided {level(plan)}); the best mean validation {label} among the "
        "rest is the choice (ties to the simplest). The test split is used once: to confirm the best alternative "
        f"to {name(baseline)} against it, {cross_fit}. {name(baseline)} stays unless the alternative is confirmed "
        "better: a screen it fails is reported, never acted on alone."
    )


def qualify(v: Verdict, one_seed: bool) -> str:
    """A verdict as the report writes it: one seed's firm-sounding verdicts say what they rest on."""
    return (
        f"{v} ({ONE_SEED})"
        if one_seed and v in (Verdict.BETTER, Verdict.WORSE, Verdict.EQUIVALENT)
        else str(v)
    )


def _interval(est: Estimate, plan: Plan) -> str:
    low, high = est.interval(1 - plan.alpha)
    return f"{est.difference:+.3f} ({level(plan)} CI [{low:+.3f}, {high:+.3f}], p = {max(est.p_value, 1e-4):.3g})"


def _effects(d: Decision) -> str:
    """Both effects, each labelled: the procedure's cross-fitted one (the confirmation) and the chosen
    configuration's own over every seed (exploratory: its choice saw these seeds' validation outputs)."""
    conf, alt, plan = d.confirmation, d.alternative, d.plan
    assert conf is not None and alt is not None
    s = len(conf.seeds)
    kept = conf.kept_baseline(d.baseline)
    folds = f"choice procedure, cross-fitted over {s} {'folds' if d.grid.folds is not None else 'seeds'}"
    if not conf.stable:
        picks = pd.Series([name(c) for c in conf.fold_choices]).value_counts()
        folds += " (folds chose " + ", ".join(f"{k} {v} of {s}" for k, v in picks.items()) + ")"
    if kept:
        folds += (
            f"; in {kept} of {s} folds no alternative qualified and the procedure kept {name(d.baseline)}"
        )
    text = f"{_interval(conf.estimate, plan)} [{folds}]"
    own = d.row(plan.primary, alt)
    if own is not None and not (conf.stable and not kept):
        text += (
            f"; {name(alt)} itself over all {own.seeds} {'folds' if d.grid.folds is not None else 'seeds'}: "
            f"{own.difference:+.3f} "
            f"[{own.ci_low:+.3f}, {own.ci_high:+.3f}] (exploratory)"
        )
    return text


def _margin_note(d: Decision) -> str:
    """What the data can say about "as good": the smallest margin they show equivalence within, and the
    limit the test set's own noise sets whatever the seeds."""
    est, plan = d.confirmation.estimate, d.plan  # type: ignore[union-attr]
    res, floor = est.equivalence_resolution(plan.alpha), est.image_floor(plan.alpha)
    if d.grid.folds is not None:
        # the image level of a cross-validated study holds each fold model's own per-image noise too, which
        # more repeats average (RetinaMNIST: image SE 0.0146 with 1 repeat, 0.0113 with 2): not a hard floor
        r = len(d.grid.seeds)
        return (
            f"These data would show equivalence only within ±{res:.3f}; the noise of these {est.n} images, as "
            f"{r} repeat{'s' if r > 1 else ''} of fold models read{'' if r > 1 else 's'} them, limits it to "
            f"±{floor:.3f} (more repeats lower that only by averaging the models' own per-image noise)."
        )
    images = "with any number of seeds this test set's own noise"
    return f"These data would show equivalence only within ±{res:.3f}; {images} limits it to ±{floor:.3f} at best."


def _answer(d: Decision) -> str:
    """The first sentence: the recommendation and its evidence."""
    base, alt, conf, plan = d.baseline, d.alternative, d.confirmation, d.plan
    label = METRICS[plan.primary].label.lower()
    if alt is None or conf is None:
        return f"Stay with {name(base)}: no other configuration passed the validation screens (see the table below)."
    v, effect = conf.verdict, _effects(d)
    what = f"{name(alt)}, the best alternative on validation,"
    if v is Verdict.NOT_TESTED:
        return (
            f"No verdict from one seed: on test {what} differs from {name(base)} by {label} {effect}. One seed shows "
            "how these two runs differ on these images (the interval holds the test images' noise only); it cannot "
            f"tell a configuration's effect from its seed's luck, and its choice saw the same run. Stay with "
            f"{name(base)} for now; run at least 3 seeds."
        )
    if v is Verdict.BETTER:
        est = conf.estimate
        inside = (
            -plan.margin < est.interval(1 - plan.alpha)[0] and est.interval(1 - plan.alpha)[1] < plan.margin
        )
        size = (
            f", by less than the margin ±{plan.margin:g} that the plan calls practically equal"
            if inside
            else ""
        )
        return f"Use {name(alt)}: chosen on validation, it is better than {name(base)} on test{size}, {label} {effect}."
    if v is Verdict.WORSE:
        return f"Stay with {name(base)}: {what} is worse on test, {label} {effect}."
    if v is Verdict.EQUIVALENT:
        return (
            f"Stay with {name(base)}, the simpler: {what} is equivalent to it within ±{plan.margin:g} on test ({effect}, "
            f"TOST p = {conf.estimate.p_equivalence(plan.margin):.3g}), as good a choice on {label}."
        )
    unknown = f"neither a difference nor equivalence within ±{plan.margin:g} is shown. {_planning_sentence(d)} {_margin_note(d)}"
    return f"Stay with {name(base)} for now, no difference shown: {what} differs from it on test by {label} {effect}: {unknown}"


def _baseline_note(d: Decision) -> str | None:
    """A baseline that failed a validation screen is reported (it does not move the recommendation)."""
    sc = d.screens[d.baseline]
    if sc.passed:
        return None
    parts = []
    if sc.unstable:
        seeds = "; ".join(f"{_unit(d)} {s}: {', '.join(k)}" for s, k in sc.zeroed)
        parts.append(f"zeroed a class on validation in {len(sc.zeroed)} of {sc.seeds} {_unit(d)}s ({seeds})")
    return (
        f"{name(d.baseline)} failed a validation screen: {'; '.join(parts)}. A screen judged on a few validation "
        "images is reported, not acted on: the recommendation changes only when an alternative is confirmed better "
        "on test (see the rarest class's F1 below for what this costs)."
    )


def _planning_sentence(d: Decision) -> str:
    if d.grid.folds is not None:
        return (
            "More repeats would shrink the fold-to-fold share of the interval and, in the images' share, the fold "
            "models' own per-image noise, never the images' sampling noise (no planning estimate for a "
            "cross-validated study)."
        )
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
    header = [
        "metric",
        "role",
        name(d.baseline),
        alt_name,
        "difference",
        f"{level(d.plan)} CI",
        "p",
        "verdict",
    ]
    return Block("table", header=header, rows=rows)


def _validation_table(d: Decision) -> Block:
    label = METRICS[d.plan.primary].label
    rows = []
    order = sorted(d.grid.configs, key=lambda c: -d.plan.sign * d.validation_means[c])
    for c in order:
        sc = d.screens[c]
        status = []
        if sc.unstable:
            status.append("unstable: " + "; ".join(f"{_unit(d)} {s}: {', '.join(k)}" for s, k in sc.zeroed))
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
        header=[
            "configuration",
            f"validation {label} (mean)",
            "screens",
            f"{'repeats' if d.grid.folds is not None else 'seeds'} with a zeroed class",
        ],
        rows=rows,
    )


def findings_blocks(s: Section, d: Decision) -> list[Block]:
    """What to use, by how much, how sure; then how the choice was made and the evidence it rests on."""
    blocks = [
        Block("h3", "Findings"),
        Block("p", _answer(d)),
        Block("p", rule_text(d.plan, d.baseline, d.grid.folds.k if d.grid.folds else 0)),
    ]
    note = _baseline_note(d)
    if note:
        blocks.append(Block("note", note))
    conf = d.confirmation
    if conf is not None and not conf.stable:
        picks = pd.Series([name(c) for c in conf.fold_choices]).value_counts()
        blocks.append(
            Block(
                "note",
                (
                    "The folds' validation choices differed ("
                    if d.grid.folds is not None
                    else "The validation choice changed when one seed was left out ("
                )
                + ", ".join(f"{k}: {v} of {len(conf.fold_choices)}" for k, v in picks.items())
                + "): the confirmed effect is that of the choice procedure, not of one fixed configuration; "
                "the first sentence gives both.",
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
    if d.grid.folds is not None:
        return cv_evidence(s, d, rare)
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


def cv_evidence(s: Section, d: Decision, rare: str) -> str:
    """The evidence line of a cross-validated data set: the design, the pool, the folds' balance, the groups."""
    folds, f = d.grid.require_folds(), s.facts
    overs = {" + ".join(c.get("cv_over") or ["train", "val", "test"]) for c in s.data.runs.config}
    over = " / ".join(sorted(overs))
    labels = d.grid.study.test.labels
    worst = max(fold_balance(labels, folds.ids[r], folds.k) for r in range(folds.repeats))
    grouping = (
        "folds keep each group (patient) whole"
        if all(info.get("grouped") for info in s.data.runs.dataset_info)
        else "image-level folds: this data set names no patient (group) ids, so one patient's images may sit in "
        "different folds (the official split may have kept them together)"
    )
    return (
        f"Evidence: {folds.k}-fold cross-validation x {folds.repeats} repeat(s) ({', '.join(map(str, d.seeds))}) per "
        f"configuration over all {f.sizes['test']} labelled images ({over} pooled){rare}; every image is tested once "
        f"and validated once per repeat. Each fold's run tests on its fold, validates on the next and trains on the "
        f"other {folds.k - 2}; the folds' class counts lie within {worst:.1f} image(s) of an even share; {grouping}. "
        "The best epoch, the post-hoc tau and the choice used validation predictions only; the choice for a fold "
        "never read its test images. Intervals hold fold-to-fold (model) and image noise "
        '(docs/method.md, "Cross-validated studies").'
    )
