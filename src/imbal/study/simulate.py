"""Studies with known truth, to measure the report's error rates without training (docs/method.md).

A simulated study has K configurations x S seeds. Run (c, s) has a population recall per class of
``recall[c] + a_s + u_cs`` (a shift shared by all configurations of a seed, and one of its own), and
answers each image of a freshly drawn validation and test set correctly with that probability. Its
answers on one image are correlated with every other run's (a Gaussian copula with correlation
``image_rho``: hard images are hard for everyone), so the test set's own sampling noise is shared by
all runs, as on real data. A wrong answer names the image's usual confuser most of the time.

The true balanced accuracy of a configuration is the mean of its recalls (the shifts average out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtri

from imbal.study.outputs import Config, SplitOutputs, StudyOutputs

# the study's 15 configurations plus la-ce, baseline first
CONFIGS: list[Config] = [
    ("uniform", "ce"),
    *[("uniform", loss) for loss in ("ce+f1", "ce+mcc", "f1", "focal", "mcc", "la-ce")],
    *[("oversample", loss) for loss in ("ce", "ce+f1", "ce+mcc", "f1", "focal", "mcc")],
    *[("weights", loss) for loss in ("ce", "ce+f1", "ce+mcc")],
]
# RetinaMNIST-like: test n = 400 with a rarest class of 20, validation n = 120 (MedMNIST splits)
TEST_COUNTS = (174, 46, 92, 68, 20)
VAL_COUNTS = (53, 14, 23, 22, 8)
BASE_RECALL = (0.80, 0.15, 0.40, 0.25, 0.25)  # balanced accuracy 0.37, as CE + uniform on RetinaMNIST


@dataclass(frozen=True)
class Truth:
    """Known truth of a study: population recalls ``(K, C)`` and the noise model."""

    recall: np.ndarray
    seeds: int = 5
    # calibrated to the RetinaMNIST reproduction (80 runs): across seeds, one configuration's balanced
    # accuracy has an SD of 0.024 on validation and 0.021 on test measured, 0.030 and 0.022 simulated
    seed_sd: float = 0.008
    run_sd: float = 0.012
    image_rho: float = 0.9
    test_counts: tuple[int, ...] = TEST_COUNTS
    val_counts: tuple[int, ...] = VAL_COUNTS
    configs: list[Config] = field(default_factory=lambda: list(CONFIGS))

    def __post_init__(self) -> None:
        r = np.asarray(self.recall, dtype=float)
        if r.shape != (len(self.configs), len(self.test_counts)):
            raise ValueError(
                f"recall must have shape (configs, classes)=({len(self.configs)}, {len(self.test_counts)}), got {r.shape}"
            )
        if not ((r > 0) & (r < 1)).all():
            raise ValueError("recalls must lie strictly between 0 and 1")

    @property
    def balanced_accuracy(self) -> np.ndarray:
        """True balanced accuracy of each configuration ``(K,)``."""
        return np.asarray(self.recall).mean(1)

    def effect(self, config: Config) -> float:
        """True balanced-accuracy difference of ``config`` to the first configuration (the baseline)."""
        ba = self.balanced_accuracy
        return float(ba[self.configs.index(config)] - ba[0])


def shifted(effects: np.ndarray | list[float], base: tuple[float, ...] = BASE_RECALL) -> np.ndarray:
    """Recalls ``(K, C)`` whose balanced accuracies differ from ``base``'s by ``effects`` (every class shifted alike)."""
    return np.asarray(base)[None, :] + np.asarray(effects, dtype=float)[:, None]


def _split(rng: np.random.Generator, recall: np.ndarray, counts: tuple[int, ...], rho: float) -> SplitOutputs:
    """Hard predictions of every run ``recall`` ``(R, C)`` on a freshly drawn set of images."""
    c = len(counts)
    labels = np.repeat(np.arange(c), counts)
    n, r = len(labels), recall.shape[0]
    difficulty = rng.standard_normal(n)
    latent = rho * difficulty + np.sqrt(1 - rho**2) * rng.standard_normal((r, n))
    correct = latent < ndtri(np.clip(recall[:, labels], 1e-4, 1 - 1e-4))
    # a wrong answer: the image's usual confuser (70%), else any other class
    confuser = (labels + rng.integers(1, c, n)) % c
    other = (labels[None] + rng.integers(1, c, (r, n))) % c
    wrong = np.where(rng.random((r, n)) < 0.7, confuser[None], other)
    return SplitOutputs(labels, np.where(correct, labels[None], wrong))


def draw(truth: Truth, rng: np.random.Generator, minority: int | None = None) -> StudyOutputs:
    """One simulated study: every configuration x seed, with validation and test predictions."""
    k, s = len(truth.configs), truth.seeds
    shift = rng.normal(0, truth.seed_sd, s)[None, :] + rng.normal(0, truth.run_sd, (k, s))
    recall = (np.asarray(truth.recall)[:, None, :] + shift[:, :, None]).reshape(k * s, -1)
    runs = [(config, seed) for config in truth.configs for seed in range(s)]
    counts = truth.test_counts
    return StudyOutputs(
        runs,
        _split(rng, recall, truth.val_counts, truth.image_rho),
        _split(rng, recall, counts, truth.image_rho),
        len(counts),
        int(np.argmin(counts)) if minority is None else minority,
        baseline=truth.configs[0],
    )


@dataclass
class Outcome:
    """What one simulated study's analysis said, next to the truth."""

    verdict: str  # the confirmation's verdict on the primary
    false_claim: bool  # any better/worse verdict on the primary that the truth contradicts
    estimate: float  # the confirmation's test effect
    truth: float  # the true effect of what it confirmed (mean over its cross-fitted folds)
    covered: bool  # the confirmation's 95% interval holds the truth
    test_choice_estimate: float  # the test effect had the test chosen (for the selection bias)
    test_choice_truth: float
    seeds_needed: int | None  # the planning answer for a difference (None: more than 30)
    seed_var: float = math.nan  # the confirmation's variance components
    image_var: float = math.nan


def analyse(study: StudyOutputs, truth: Truth, plan, planning: bool = False) -> Outcome | None:
    """The report's primary analysis of one simulated study (None: nothing to confirm)."""
    from imbal.study.decision import Grid, confirm, exploratory_table
    from imbal.study.stats import Verdict, seeds_needed

    grid = Grid(study)
    conf = confirm(grid, plan)
    if conf is None:
        return None
    effects = {c: truth.effect(c) for c in truth.configs}
    true_effect = float(np.mean([effects[c] for c in conf.fold_choices]))
    claims = [(true_effect, conf.verdict)]
    if conf.verdict in (Verdict.BETTER, Verdict.WORSE):
        table = exploratory_table(grid, plan, conf, metrics=[plan.primary], planning=False)
        for r in table[table.role == "primary"].itertuples():
            claims.append((effects[(r.sampler, r.loss)], Verdict(r.verdict)))
    false_claim = any(
        (v is Verdict.BETTER and plan.sign * t <= 0) or (v is Verdict.WORSE and plan.sign * t >= 0)
        for t, v in claims
    )
    est = conf.estimate
    low, high = est.interval(1 - plan.alpha)
    means = grid.scores("test", plan.primary)[0].mean(1)
    pick = 1 + int(np.argmax(plan.sign * means[1:]))
    needed = seeds_needed(est, plan.alpha)[1] if planning and est.seeds >= 2 else None
    return Outcome(
        str(conf.verdict),
        false_claim,
        est.difference,
        true_effect,
        bool(low <= true_effect <= high),
        float(means[pick] - means[0]),
        effects[grid.configs[pick]],
        needed,
        est.seed_var,
        est.image_var,
    )


def run(
    truth: Truth, studies: int, plan, seed: int = 0, planning: bool = False, components: bool = True
) -> list[Outcome]:
    """``studies`` simulated studies of ``truth`` analysed as a report would (numpy; no training)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(studies):
        o = analyse(draw(truth, rng), truth, plan, planning)
        if o is not None:
            out.append(o)
    return out


def _pair(effect: float, seeds: int, studies: int, seed: int) -> list:
    from imbal.study.decision import Grid

    pair = [CONFIGS[0], CONFIGS[1]]
    truth = Truth(shifted([0.0, effect]), seeds=seeds, configs=pair)
    rng = np.random.default_rng(seed)
    return [Grid(draw(truth, rng)).estimates("test", "balanced_accuracy")[0] for _ in range(studies)]


def report(studies: int = 2000) -> str:
    """The simulation table of docs/method.md ("What the simulation shows"), as Markdown lines."""
    from imbal.study.plan import Plan
    from imbal.study.stats import Estimate, power, seeds_needed, verdict

    plan = Plan()
    lines = ["| scenario | measured | Monte Carlo SE |", "|---|---|---|"]

    def add(what: str, value: float, n: int, fmt: str = ".3f") -> None:
        se = math.sqrt(max(value * (1 - value), 1e-9) / n) if 0 <= value <= 1 else float("nan")
        lines.append(f"| {what} | {value:{fmt}} | {se:.3f} |")

    for seeds in (5, 3, 2):
        out = run(Truth(shifted(np.zeros(16)), seeds=seeds), studies, plan, seed=100 + seeds)
        add(
            f"16 equal configurations, {seeds} seeds: any false better/worse on the primary",
            np.mean([o.false_claim for o in out]),
            len(out),
        )
        if seeds == 5:
            err = np.array([o.estimate - o.truth for o in out])
            test_err = np.array([o.test_choice_estimate - o.test_choice_truth for o in out])
            lines.append(
                f"| same, test effect of the validation choice minus its truth | {err.mean():+.4f} | {err.std(ddof=1) / math.sqrt(len(err)):.4f} |"
            )
            lines.append(
                f"| same, had the test chosen: its effect minus its truth | {test_err.mean():+.4f} | {test_err.std(ddof=1) / math.sqrt(len(err)):.4f} |"
            )
            add(
                "same, 95% interval of the confirmation holds the truth",
                np.mean([o.covered for o in out]),
                len(out),
            )
            add(
                "same, confirmation says equivalent (margin 0.02)",
                np.mean([o.verdict == "equivalent" for o in out]),
                len(out),
            )
    effects = np.zeros(16)
    effects[8] = 0.05
    out = run(Truth(shifted(effects)), studies, plan, seed=200)
    add(
        "one configuration +0.05 of 16, 5 seeds: the validation choice is it in every fold",
        np.mean([math.isclose(o.truth, 0.05, abs_tol=1e-9) for o in out]),
        len(out),
    )
    add("same: confirmed better", np.mean([o.verdict == "better" for o in out]), len(out))
    pilot = _pair(0.05, 5, studies, 300)
    sd = math.sqrt(np.mean([e.seed_var * e.seeds for e in pilot]))
    iv = float(np.mean([e.image_var for e in pilot]))
    for n in (5, seeds_needed(Estimate(0.05, sd**2 / 5, iv, 5, 400), plan.alpha)[1] or 30):
        ests = pilot if n == 5 else _pair(0.05, n, studies, 301)
        found = float(np.mean([verdict(e, plan.alpha) == "better" for e in ests]))
        add(
            f"two configurations, +0.05 truly, {n} seeds: found better (promised power {power(0.05, sd, iv, n):.3f})",
            found,
            len(ests),
        )
    same = _pair(0.0, 5, studies, 400)
    true_se = float(np.std([e.difference for e in same], ddof=1))
    for ratio in (2.0, 3.5, 4.0):
        rate = float(np.mean([e.p_equivalence(ratio * true_se) < plan.alpha for e in same]))
        add(f"two identical configurations, 5 seeds, margin {ratio:g} x SE: equivalent", rate, len(same))
    add("same: better or worse", float(np.mean([e.p_value < plan.alpha for e in same])), len(same))
    for seeds in (2, 3, 5):
        for effect in (0.0, 0.03):
            ests = same if (seeds, effect) == (5, 0.0) else _pair(effect, seeds, studies, 500 + seeds)
            cov = np.mean([(lambda lo_hi: lo_hi[0] <= effect <= lo_hi[1])(e.interval(0.95)) for e in ests])
            add(f"95% interval coverage, {seeds} seeds, true difference {effect:+.2f}", float(cov), len(ests))
    return "\n".join(lines)


# --- races (imbal recommend) -------------------------------------------------------------------

# the committed RetinaMNIST study's 16 mean balanced accuracies (docs/reproduction/study/runs.csv)
RETINA_MEANS = {
    ("uniform", "ce"): 0.3706,
    ("uniform", "ce+f1"): 0.3723,
    ("uniform", "ce+mcc"): 0.3622,
    ("uniform", "f1"): 0.3528,
    ("uniform", "focal"): 0.3672,
    ("uniform", "mcc"): 0.3259,
    ("uniform", "la-ce"): 0.3692,
    ("oversample", "ce"): 0.3576,
    ("oversample", "ce+f1"): 0.3733,
    ("oversample", "ce+mcc"): 0.3637,
    ("oversample", "f1"): 0.3729,
    ("oversample", "focal"): 0.3547,
    ("oversample", "mcc"): 0.3000,
    ("weights", "ce"): 0.3734,
    ("weights", "ce+f1"): 0.3760,
    ("weights", "ce+mcc"): 0.3718,
}


def race_truth(pattern: str) -> np.ndarray:
    """True balanced-accuracy differences to the baseline ``(16,)`` of the named effect pattern."""
    e = np.zeros(len(CONFIGS))
    if pattern == "one clear winner":
        e[CONFIGS.index(("oversample", "ce+f1"))] = 0.06
    elif pattern == "two close leaders":
        e[CONFIGS.index(("oversample", "ce+f1"))] = 0.04
        e[CONFIGS.index(("weights", "ce+f1"))] = 0.035
    elif pattern == "many losers":  # 13 of 16 are 0.08 behind three leaders within 0.01
        e[:] = -0.08
        e[[0, CONFIGS.index(("uniform", "ce+f1")), CONFIGS.index(("weights", "ce"))]] = [0.0, 0.01, 0.005]
    elif pattern == "RetinaMNIST-like":
        e = np.array([RETINA_MEANS[c] for c in CONFIGS]) - RETINA_MEANS[CONFIGS[0]]
    elif pattern != "all equal":
        raise ValueError(f"unknown pattern {pattern!r}")
    return e


@dataclass
class RaceResult:
    runs: int
    grid: int  # runs of the full grid at the race's seed limit
    choice_regret: float  # best truth minus the race choice's truth
    final_regret: float  # ... minus the recommendation's after the test confirmation
    final_is_baseline: bool
    verdict: str


def scores_matrix(study: StudyOutputs, metric: str = "balanced_accuracy") -> np.ndarray:
    """Validation scores ``(K, S)`` of a complete simulated study, configurations in their order."""
    s, _ = study.scores("val", metric)
    return np.array([[s[study.row[(c, x)]] for x in study.seeds_of(c)] for c in study.configs])


def trained_part(study: StudyOutputs, seeds: dict[Config, int]) -> StudyOutputs:
    """The runs a race trained: each configuration's first ``seeds[c]`` seeds."""
    keep = [i for i, (c, s) in enumerate(study.runs) if s < seeds.get(c, 0)]

    def part(split: SplitOutputs) -> SplitOutputs:
        return SplitOutputs(
            split.labels, split.preds[keep], None if split.probs is None else split.probs[keep]
        )

    return StudyOutputs(
        [study.runs[i] for i in keep],
        part(study.val),
        part(study.test),
        study.num_classes,
        study.minority,
        study.baseline,
    )


def run_race(pattern: str, studies: int, plan, rules, seed: int = 0, image: bool = True) -> list[RaceResult]:
    """Races on simulated studies of ``pattern``, each followed by the report's test confirmation."""
    from imbal.study.decision import Grid, confirm, recommendation
    from imbal.study.race import replay

    effects = race_truth(pattern)
    truth = Truth(shifted(effects), seeds=rules.max_seeds)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(studies):
        study = draw(truth, rng)
        outcome = replay(scores_matrix(study), study.configs, study.baseline, rules)
        trained: dict[Config, int] = {}
        for r in outcome.rounds:
            for c in r.alive:
                trained[c] = r.seeds
        trained[study.baseline] = outcome.rounds[-1].seeds
        grid = Grid(trained_part(study, trained))
        conf = confirm(grid, plan) if len(grid.configs) > 1 else None
        alt = conf.fold_choices[0] if conf is not None else None
        rec = recommendation(study.baseline, True, outcome.choice, alt, conf.verdict if conf else None)
        rec = rec or study.baseline
        best = effects.max()
        out.append(
            RaceResult(
                outcome.runs,
                len(CONFIGS) * rules.max_seeds,
                float(best - effects[CONFIGS.index(outcome.choice)]),
                float(best - effects[CONFIGS.index(rec)]),
                rec == study.baseline,
                str(conf.verdict) if conf else "none",
            )
        )
    return out


def reference_race(x: np.ndarray, rules) -> tuple[int, int]:
    """The issue's simple reference race on scores ``(K, S)``: Bonferroni over (K - 1) x rounds, pooled variance,
    a configuration dropped when the upper bound of its difference to the leader is below the margin.
    Returns (choice, runs used); the baseline (row 0) trains every round, as in the race."""
    from scipy import stats as sps

    k_all = x.shape[0]
    alive, n, used = list(range(k_all)), rules.min_seeds, {}
    while True:
        for c in alive:
            used[c] = n
        used[0] = n
        s = x[alive, :n]
        k = len(alive)
        means = s.mean(1)
        lead = int(np.argmax(means))
        if k > 1:
            resid = s - s.mean(1, keepdims=True) - s.mean(0, keepdims=True) + s.mean()
            df = (k - 1) * (n - 1)
            se = math.sqrt(2 * (resid**2).sum() / df / n)
            t = sps.t.ppf(1 - rules.alpha / ((k_all - 1) * rules.rounds), df)
            alive = [
                alive[i] for i in range(k) if i == lead or means[i] - means[lead] + t * se >= rules.margin
            ]
        if len(alive) == 1 or n >= rules.max_seeds:
            break
        n += 1
    return alive[int(np.argmax(x[alive, :n].mean(1)))], sum(used.values())


def score_races(
    pattern: str, studies: int, rules, seed: int = 0, seed_sd: float = 0.012, run_sd: float = 0.022
):
    """The race and the reference on the issue's score-level model (per-seed shift + configuration x seed noise).

    Returns arrays ``(studies,)``: runs used by the race and the reference, and each one's regret.
    """
    from imbal.study.race import replay

    effects = race_truth(pattern)
    rng = np.random.default_rng(seed)
    k, s = len(CONFIGS), rules.max_seeds
    out = np.zeros((studies, 4))
    for i in range(studies):
        x = effects[:, None] + rng.normal(0, seed_sd, s)[None] + rng.normal(0, run_sd, (k, s))
        o = replay(x, CONFIGS, CONFIGS[0], rules)
        ref_choice, ref_runs = reference_race(x, rules)
        best = effects.max()
        out[i] = (o.runs, ref_runs, best - effects[CONFIGS.index(o.choice)], best - effects[ref_choice])
    return out


PATTERNS = ("one clear winner", "all equal", "two close leaders", "many losers", "RetinaMNIST-like")


def race_report(studies: int = 1000) -> str:
    """The race tables of docs/method.md ("The race"), as Markdown lines."""
    from imbal.study.plan import Plan
    from imbal.study.race import Rules

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
        res = run_race(pattern, max(200, studies // 4), Plan(), Rules(), seed=8)
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
