"""The simulation tables of docs/method.md, printed::

    python -m imbal.study.simulation.tables [N]         # the report's rule, N studies per row (2000)
    python -m imbal.study.simulation.tables race [N]    # the race, N races per row (1000)
    python -m imbal.study.simulation.tables cv [N]      # cross-validated studies, N per row (1000)
    python -m imbal.study.simulation.tables cv-race [N] # the race over repeats, N races per row (1000)

Every row runs on studies drawn with the noise of the published RetinaMNIST and VesselMNIST3D studies
(:mod:`imbal.study.simulation.studies`), and states its Monte Carlo standard error.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace

import numpy as np

from imbal.study.analysis.choice import Grid
from imbal.study.analysis.plan import Plan
from imbal.study.analysis.stats import Estimate, Verdict, power, verdict
from imbal.study.race.rules import Rules
from imbal.study.simulation.calibrate import simulated
from imbal.study.simulation.races import (
    PATTERNS,
    RaceResult,
    score_races,
    simulate_fold_races,
    simulate_races,
)
from imbal.study.simulation.studies import (
    CALIBRATIONS,
    CONFIGS,
    TARGET_NAMES,
    Calibration,
    Truth,
    draw,
    null,
    pair,
    run,
)


def _pair_estimates(effect: float, cal: Calibration, seeds: int, studies: int, seed: int) -> list[Estimate]:
    rng = np.random.default_rng(seed)
    truth = pair(effect, cal, seeds)
    return [Grid(draw(truth, rng)).estimates("test", "balanced_accuracy")[0] for _ in range(studies)]


class _Table:
    """Markdown rows of measured rates with their Monte Carlo standard errors."""

    def __init__(self, title: str, what: str = "scenario") -> None:
        self.lines = [title, "", f"| {what} | measured | Monte Carlo SE |", "|---|---|---|"]

    def rate(self, what: str, value: float | np.floating, n: int) -> None:
        se = math.sqrt(max(value * (1 - value), 1e-9) / n)
        self.lines.append(f"| {what} | {value:.3f} | {se:.3f} |")

    def mean(self, what: str, values: np.ndarray | list[float]) -> None:
        v = np.asarray(values, dtype=float)
        se = v.std(ddof=1) / math.sqrt(len(v))
        self.lines.append(f"| {what} | {v.mean():+.4f} | {se:.4f} |")

    def text(self, what: str, value: str) -> None:
        self.lines.append(f"| {what} | {value} | - |")


def _calibration_rows(t: _Table, cal: Calibration, studies: int) -> None:
    sim = simulated(cal, max(50, studies // 10))
    for split, got, want in zip(("validation", "test"), sim, cal.measured):
        for name, g, w in zip(TARGET_NAMES, got, want):
            t.text(f"calibration, {split}: {name} (published study / simulated)", f"{w:.4f} / {g:.4f}")


def _null_rows(t: _Table, cal: Calibration, plan: Plan, studies: int) -> None:
    """16 equal configurations: false verdicts, the baseline kept, the screens; bias, coverage at 5 seeds."""
    for seeds in (2, 3, 5):
        out = run(null(cal, seeds), studies, plan, seed=100 + seeds)
        n = len(out)
        t.rate(
            f"16 equal, {seeds} seeds: any false better/worse on the primary",
            np.mean([o.false_claim for o in out]),
            n,
        )
        t.rate(
            f"16 equal, {seeds} seeds: the findings keep the baseline",
            np.mean([o.baseline_kept for o in out]),
            n,
        )
        t.rate(
            f"16 equal, {seeds} seeds: the baseline failed a validation screen (reported, changes nothing)",
            np.mean([o.baseline_screened for o in out]),
            n,
        )
        if seeds == 5:
            t.mean(
                "16 equal, 5 seeds: test effect of the validation choice minus its truth",
                [o.estimate - o.truth for o in out],
            )
            t.mean(
                "16 equal, 5 seeds: had the test chosen, its effect minus its truth",
                [o.test_choice_estimate - o.test_choice_truth for o in out],
            )
            t.rate(
                "16 equal, 5 seeds: the confirmation's 95% interval holds the truth",
                np.mean([o.covered for o in out]),
                n,
            )


def _coverage_rows(t: _Table, cal: Calibration, studies: int) -> None:
    for seeds in (2, 3, 5, 10):
        for effect in (0.0, 0.03):
            ests = _pair_estimates(effect, cal, seeds, studies, 500 + seeds + int(100 * effect))
            cov = np.mean([e.interval(0.95)[0] <= effect <= e.interval(0.95)[1] for e in ests])
            t.rate(
                f"two configurations, {seeds} seeds, true difference {effect:+.2f}: 95% interval holds it",
                float(cov),
                len(ests),
            )


def _power_rows(t: _Table, cal: Calibration, plan: Plan, studies: int) -> None:
    """A planted +0.05 between two at 3, 5, 10 seeds (power promised from the true spread), and among 16."""
    pilot = _pair_estimates(0.05, cal, 5, studies, 300)
    sd = math.sqrt(np.mean([e.seed_var * e.seeds for e in pilot]))
    iv = float(np.mean([e.image_var for e in pilot]))
    for seeds in (3, 5, 10):
        ests = pilot if seeds == 5 else _pair_estimates(0.05, cal, seeds, studies, 301 + seeds)
        found = float(np.mean([verdict(e, plan.alpha) is Verdict.BETTER for e in ests]))
        promised = power(0.05, sd, iv, seeds, plan.alpha)
        t.rate(
            f"two configurations, +0.05 truly, {seeds} seeds: found better (promised {promised:.3f})",
            found,
            len(ests),
        )
    effects = np.zeros(16)
    effects[8] = 0.05
    out = run(Truth(effects, cal), studies, plan, seed=200)
    t.rate(
        "one configuration +0.05 of 16, 5 seeds: the validation choice is it in every fold",
        np.mean([math.isclose(o.truth, 0.05, abs_tol=1e-9) for o in out]),
        len(out),
    )
    t.rate("same: confirmed better", np.mean([o.verdict is Verdict.BETTER for o in out]), len(out))


def _equivalence_rows(t: _Table, cal: Calibration, plan: Plan, studies: int) -> None:
    same = _pair_estimates(0.0, cal, 5, studies, 400)
    true_se = float(np.std([e.difference for e in same], ddof=1))
    for ratio in (2.0, 3.5, 4.0):
        rate = float(np.mean([e.p_equivalence(ratio * true_se) < plan.alpha for e in same]))
        t.rate(
            f"two identical, 5 seeds, margin {ratio:g} x SE ({ratio * true_se:.3f}): equivalent",
            rate,
            len(same),
        )
    t.rate(
        f"two identical, 5 seeds, margin {plan.margin:g}: equivalent",
        np.mean([e.p_equivalence(plan.margin) < plan.alpha for e in same]),
        len(same),
    )
    t.mean(
        "two identical, 5 seeds: smallest margin these data could show equivalence at",
        [e.equivalence_resolution(plan.alpha) for e in same],
    )


def _stress_rows(t: _Table, cal: Calibration, plan: Plan, studies: int) -> None:
    scale = np.ones(16)
    scale[8] = 3.0
    for what, truth in (
        ("heavy-tailed runs (t, 3 df)", replace(null(cal), heavy_tails=3.0)),
        ("one configuration with 3x the run spread", replace(null(cal), run_sd_scale=tuple(scale))),
    ):
        out = run(truth, studies, plan, seed=700)
        t.rate(
            f"16 equal, 5 seeds, {what}: any false better/worse",
            np.mean([o.false_claim for o in out]),
            len(out),
        )
        t.rate("same: the findings keep the baseline", np.mean([o.baseline_kept for o in out]), len(out))
        t.rate(
            "same: the confirmation's 95% interval holds the truth",
            np.mean([o.covered for o in out]),
            len(out),
        )


def report(studies: int = 2000) -> str:
    """The simulation tables of docs/method.md ("What the simulation shows"), as Markdown lines."""
    plan = Plan()
    lines = []
    for cal in CALIBRATIONS.values():
        t = _Table(f"{cal.name}-like noise, {studies} studies per row:")
        _calibration_rows(t, cal, studies)
        for rows in (_null_rows, _power_rows, _equivalence_rows, _stress_rows):
            rows(t, cal, plan, studies)
        _coverage_rows(t, cal, studies)
        lines += [*t.lines, ""]
    return "\n".join(lines).rstrip()


def _cv_rows(t: _Table, cal: Calibration, plan: Plan, studies: int) -> None:
    """A 5-fold study over the pool: the null's error rates and bias, coverage, power, half-width, stress."""
    out = run(null(cal, 1), studies, plan, seed=51, folds=5)
    t.rate(
        "16 equal configurations, 5 folds x 1 repeat: any false better/worse on the primary",
        np.mean([o.false_claim for o in out]),
        len(out),
    )
    t.rate("... the findings keep the baseline", np.mean([o.baseline_kept for o in out]), len(out))
    t.mean(
        "... effect of the cross-fitted choice minus its truth (bias)", [o.estimate - o.truth for o in out]
    )
    for repeats in (1, 2, 3):
        for effect in (0.0, 0.03):
            res = run(pair(effect, cal, repeats), studies, plan, seed=52 + repeats, folds=5)
            t.rate(
                f"coverage of the {1 - plan.alpha:.0%} interval, 5 folds x {repeats}, difference {effect:+.2f}",
                np.mean([o.covered for o in res]),
                len(res),
            )
    cv = run(pair(0.05, cal, 1), studies, plan, seed=55, folds=5)
    t.rate(
        "power for +0.05, 5 folds x 1 repeat (80 runs at 16 configurations)",
        np.mean([o.verdict is Verdict.BETTER for o in cv]),
        len(cv),
    )
    seeds = run(pair(0.05, cal, 5), studies, plan, seed=56)
    t.rate(
        "... the official split, 5 seeds (the same 80 runs)",
        np.mean([o.verdict is Verdict.BETTER for o in seeds]),
        len(seeds),
    )
    half = [np.median([math.sqrt(o.seed_var + o.image_var) for o in res]) for res in (cv, seeds)]
    t.text(
        "median standard error of the confirmation, 5 folds x 1 / official split, 5 seeds",
        f"{half[0]:.4f} / {half[1]:.4f} (ratio {half[0] / half[1]:.2f})",
    )
    for scale in (1.0, 2.0):
        res = run(pair(0.03, cal, 1), studies, plan, seed=57, folds=5, partition_sd=scale * cal.run_sd)
        t.rate(
            f"stress: a shift shared by a repeat's folds ({scale:g} x the run SD), coverage at +0.03",
            np.mean([o.covered for o in res]),
            len(res),
        )
    tails = run(replace(pair(0.03, cal, 1), heavy_tails=3.0), studies, plan, seed=58, folds=5)
    t.rate(
        "stress: heavy-tailed runs (t3), coverage at +0.03", np.mean([o.covered for o in tails]), len(tails)
    )


def cv_report(studies: int = 1000) -> str:
    """The cross-validation tables of docs/method.md ("Cross-validated studies"), as Markdown lines."""
    plan = Plan()
    lines = []
    for cal in CALIBRATIONS.values():
        t = _Table(
            f"{cal.name}-like noise, every labelled image pooled ({sum(cal.pool_counts)}), {studies} studies per row:",
            "cross-validated scenario",
        )
        _cv_rows(t, cal, plan, studies)
        lines += [*t.lines, ""]
    return "\n".join(lines).rstrip()


def race_report(studies: int = 1000) -> str:
    """The race tables of docs/method.md ("The race"), as Markdown lines."""
    lines = [
        "| noise | pattern | share of the 16 x 5 grid | P(the best dropped) | P(choice > margin below the best) | P(recommendation > margin below the best) | P(recommendation is the baseline) |",
        "|---|---|---|---|---|---|---|",
    ]
    bigger = replace(CALIBRATIONS["retina"], name="RetinaMNIST, 5x the validation images")
    bigger = replace(bigger, val_counts=tuple(5 * n for n in bigger.val_counts))
    for cal in (*CALIBRATIONS.values(), bigger):
        for pattern in PATTERNS:
            res = simulate_races(pattern, studies, Plan(), Rules(), cal, seed=8)
            lines.append(_race_row(cal.name, pattern, res))
    lines += [
        "",
        "| model | pattern | race: share of the grid | reference: share | race: P(the best dropped) | race: P(choice > margin below the best) | reference: same |",
        "|---|---|---|---|---|---|---|",
    ]
    for pattern in PATTERNS:
        r = score_races(pattern, studies, Rules(), seed=7)
        grid = len(CONFIGS) * Rules().max_seeds
        best = "-" if pattern == "all equal" else f"{r[:, 4].mean():.1%}"
        lines.append(
            f"| scores only | {pattern} | {r[:, 0].mean() / grid:.1%} | {r[:, 1].mean() / grid:.1%} | {best} | "
            f"{np.mean(r[:, 2] > 0.02 + 1e-9):.1%} | {np.mean(r[:, 3] > 0.02 + 1e-9):.1%} |"
        )
    return "\n".join(lines)


def _race_row(noise: str, pattern: str, res: list[RaceResult]) -> str:
    best = "-" if pattern == "all equal" else f"{np.mean([r.best_dropped for r in res]):.1%}"
    return (
        f"| {noise} | {pattern} | {np.mean([r.runs / r.grid for r in res]):.1%} | {best} | "
        f"{np.mean([r.choice_regret > 0.02 + 1e-9 for r in res]):.1%} | "
        f"{np.mean([r.final_regret > 0.02 + 1e-9 for r in res]):.1%} | "
        f"{np.mean([r.final_is_baseline for r in res]):.1%} |"
    )


def cv_race_report(studies: int = 1000) -> str:
    """The race-over-repeats table of docs/method.md ("A race over repeats"), as Markdown lines."""
    rules = Rules(min_seeds=1, max_seeds=3, folds=5)
    lines = [
        "| noise | pattern | share of the 16 x 3 x 5 grid | P(the best dropped) | P(choice > margin below the best) | P(recommendation > margin below the best) | P(recommendation is the baseline) |",
        "|---|---|---|---|---|---|---|",
    ]
    for cal in CALIBRATIONS.values():
        for pattern in PATTERNS:
            res = simulate_fold_races(pattern, studies, Plan(), rules, cal, seed=9)
            lines.append(_race_row(cal.name, pattern, res))
        for pattern in ("one modest winner", "all equal"):
            res = simulate_fold_races(pattern, studies, Plan(), rules, cal, seed=10, partition_sd=cal.run_sd)
            lines.append(
                _race_row(f"{cal.name}, a shift shared by a repeat's folds (1 x the run SD)", pattern, res)
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "words",
        nargs="*",
        metavar="[race|cv|cv-race] [N]",
        help="'race', 'cv' or 'cv-race' for those tables; N per row",
    )
    args = ap.parse_args(argv)
    words = list(args.words)
    tables = {"report": report, "race": race_report, "cv": cv_report, "cv-race": cv_race_report}
    kind = words.pop(0) if words and words[0] in tables else "report"
    if len(words) > 1 or (words and not words[0].isdigit()):
        ap.error(f"expected [race|cv|cv-race] [N], got {' '.join(args.words)}")
    n = int(words[0]) if words else (2000 if kind == "report" else 1000)
    print(tables[kind](n))


if __name__ == "__main__":
    main()
