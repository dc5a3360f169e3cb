"""The simulation tables of docs/method.md, printed: ``python -m imbal.study.simulation.tables [race] N``."""

from __future__ import annotations

import math

import numpy as np

from imbal.study.analysis.decision import Grid
from imbal.study.analysis.plan import Plan
from imbal.study.analysis.stats import Estimate, Verdict, power, seeds_needed, verdict
from imbal.study.race.rules import Rules
from imbal.study.simulation.races import PATTERNS, score_races, simulate_races
from imbal.study.simulation.studies import CONFIGS, Truth, draw, run, shifted


def _pair(effect: float, seeds: int, studies: int, seed: int) -> list:
    pair = [CONFIGS[0], CONFIGS[1]]
    truth = Truth(shifted([0.0, effect]), seeds=seeds, configs=pair)
    rng = np.random.default_rng(seed)
    return [Grid(draw(truth, rng)).estimates("test", "balanced_accuracy")[0] for _ in range(studies)]


class _Table:
    """Markdown rows of measured rates with their Monte Carlo standard errors."""

    def __init__(self) -> None:
        self.lines = ["| scenario | measured | Monte Carlo SE |", "|---|---|---|"]

    def rate(self, what: str, value: float | np.floating, n: int) -> None:
        se = math.sqrt(max(value * (1 - value), 1e-9) / n)
        self.lines.append(f"| {what} | {value:.3f} | {se:.3f} |")

    def mean(self, what: str, values: np.ndarray) -> None:
        se = values.std(ddof=1) / math.sqrt(len(values))
        self.lines.append(f"| {what} | {values.mean():+.4f} | {se:.4f} |")


def _null_rows(t: _Table, plan: Plan, studies: int) -> None:
    """16 equal configurations: false verdicts at 5, 3, 2 seeds; selection bias, coverage, equivalence at 5."""
    for seeds in (5, 3, 2):
        out = run(Truth(shifted(np.zeros(16)), seeds=seeds), studies, plan, seed=100 + seeds)
        t.rate(
            f"16 equal configurations, {seeds} seeds: any false better/worse on the primary",
            np.mean([o.false_claim for o in out]),
            len(out),
        )
        if seeds == 5:
            t.mean(
                "same, test effect of the validation choice minus its truth",
                np.array([o.estimate - o.truth for o in out]),
            )
            t.mean(
                "same, had the test chosen: its effect minus its truth",
                np.array([o.test_choice_estimate - o.test_choice_truth for o in out]),
            )
            t.rate(
                "same, 95% interval of the confirmation holds the truth",
                np.mean([o.covered for o in out]),
                len(out),
            )
            t.rate(
                "same, confirmation says equivalent (margin 0.02)",
                np.mean([o.verdict is Verdict.EQUIVALENT for o in out]),
                len(out),
            )


def _power_rows(t: _Table, plan: Plan, studies: int) -> None:
    """A planted +0.05: among 16 (choice and confirmation), and between two at the seeds the planning asks for."""
    effects = np.zeros(16)
    effects[8] = 0.05
    out = run(Truth(shifted(effects)), studies, plan, seed=200)
    chosen = np.mean([math.isclose(o.truth, 0.05, abs_tol=1e-9) for o in out])
    t.rate(
        "one configuration +0.05 of 16, 5 seeds: the validation choice is it in every fold", chosen, len(out)
    )
    t.rate("same: confirmed better", np.mean([o.verdict is Verdict.BETTER for o in out]), len(out))
    pilot = _pair(0.05, 5, studies, 300)
    sd = math.sqrt(np.mean([e.seed_var * e.seeds for e in pilot]))
    iv = float(np.mean([e.image_var for e in pilot]))
    for n in (5, seeds_needed(Estimate(0.05, sd**2 / 5, iv, 5, 400), plan.alpha)[1] or 30):
        ests = pilot if n == 5 else _pair(0.05, n, studies, 301)
        found = float(np.mean([verdict(e, plan.alpha) is Verdict.BETTER for e in ests]))
        t.rate(
            f"two configurations, +0.05 truly, {n} seeds: found better (promised power {power(0.05, sd, iv, n):.3f})",
            found,
            len(ests),
        )


def _pair_rows(t: _Table, plan: Plan, studies: int) -> None:
    """Two identical configurations: equivalence at margins of 2, 3.5, 4 SE; coverage at 2, 3, 5 seeds."""
    same = _pair(0.0, 5, studies, 400)
    true_se = float(np.std([e.difference for e in same], ddof=1))
    for ratio in (2.0, 3.5, 4.0):
        rate = float(np.mean([e.p_equivalence(ratio * true_se) < plan.alpha for e in same]))
        t.rate(f"two identical configurations, 5 seeds, margin {ratio:g} x SE: equivalent", rate, len(same))
    t.rate("same: better or worse", float(np.mean([e.p_value < plan.alpha for e in same])), len(same))
    for seeds in (2, 3, 5):
        for effect in (0.0, 0.03):
            ests = same if (seeds, effect) == (5, 0.0) else _pair(effect, seeds, studies, 500 + seeds)
            cov = np.mean([e.interval(0.95)[0] <= effect <= e.interval(0.95)[1] for e in ests])
            t.rate(
                f"95% interval coverage, {seeds} seeds, true difference {effect:+.2f}", float(cov), len(ests)
            )


def report(studies: int = 2000) -> str:
    """The simulation table of docs/method.md ("What the simulation shows"), as Markdown lines."""

    t = _Table()
    for rows in (_null_rows, _power_rows, _pair_rows):
        rows(t, Plan(), studies)
    return "\n".join(t.lines)


def race_report(studies: int = 1000) -> str:
    """The race tables of docs/method.md ("The race"), as Markdown lines."""
    lines = [
        "| model | pattern | seeds at most | race: share of the grid | reference: share | race: P(choice > margin below the best) | reference: same |",
        "|---|---|---|---|---|---|---|",
    ]
    for max_seeds in (5, 10):
        for pattern in PATTERNS:
            r = score_races(pattern, studies, Rules(max_seeds=max_seeds), seed=7)
            grid = len(CONFIGS) * max_seeds
            lines.append(
                f"| score | {pattern} | {max_seeds} | {r[:, 0].mean() / grid:.1%} | {r[:, 1].mean() / grid:.1%} | "
                f"{np.mean(r[:, 2] > 0.02 + 1e-9):.1%} | {np.mean(r[:, 3] > 0.02 + 1e-9):.1%} |"
            )
    lines += [
        "",
        "| model | pattern | race: share of the grid | P(race choice > margin below the best) | P(recommendation after the test > margin below the best) | P(recommendation is the baseline) |",
        "|---|---|---|---|---|---|",
    ]
    for pattern in PATTERNS:
        res = simulate_races(pattern, max(200, studies // 4), Plan(), Rules(), seed=8)
        lines.append(
            f"| images | {pattern} | {np.mean([r.runs / r.grid for r in res]):.1%} | "
            f"{np.mean([r.choice_regret > 0.02 + 1e-9 for r in res]):.1%} | "
            f"{np.mean([r.final_regret > 0.02 + 1e-9 for r in res]):.1%} | "
            f"{np.mean([r.final_is_baseline for r in res]):.1%} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    print(race_report(n) if sys.argv[1:2] == ["race"] else report(n))
