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

from imbal.study.analysis.decision import Grid, Role, confirm, exploratory_table
from imbal.study.analysis.outputs import BASELINE, Config, SplitOutputs, StudyOutputs
from imbal.study.analysis.plan import Plan
from imbal.study.analysis.stats import Verdict, seeds_needed

# the study's 15 configurations plus la-ce, baseline first
CONFIGS: list[Config] = [
    BASELINE,
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
class SimulatedOutcome:
    """What one simulated study's analysis said, next to the truth."""

    verdict: Verdict  # the confirmation's verdict on the primary
    false_claim: bool  # any better/worse verdict on the primary that the truth contradicts
    estimate: float  # the confirmation's test effect
    truth: float  # the true effect of what it confirmed (mean over its cross-fitted folds)
    covered: bool  # the confirmation's 95% interval holds the truth
    test_choice_estimate: float  # the test effect had the test chosen (for the selection bias)
    test_choice_truth: float
    seeds_needed: int | None  # the planning answer for a difference (None: more than 30)
    seed_var: float = math.nan  # the confirmation's variance components
    image_var: float = math.nan


def analyse(study: StudyOutputs, truth: Truth, plan: Plan, planning: bool = False) -> SimulatedOutcome | None:
    """The report's primary analysis of one simulated study (None: nothing to confirm)."""
    grid = Grid(study)
    conf = confirm(grid, plan)
    if conf is None:
        return None
    effects = {c: truth.effect(c) for c in truth.configs}
    true_effect = float(np.mean([effects[c] for c in conf.fold_choices]))
    claims = [(true_effect, conf.verdict)]
    if conf.verdict in (Verdict.BETTER, Verdict.WORSE):
        table = exploratory_table(grid, plan, conf, metrics=[plan.primary], planning=False)
        for r in table[table.role == Role.PRIMARY].itertuples():
            claims.append((effects[(r.sampler, r.loss)], r.verdict))
    false_claim = any(
        (v is Verdict.BETTER and plan.sign * t <= 0) or (v is Verdict.WORSE and plan.sign * t >= 0)
        for t, v in claims
    )
    est = conf.estimate
    low, high = est.interval(1 - plan.alpha)
    means = grid.scores("test", plan.primary)[0].mean(1)
    pick = 1 + int(np.argmax(plan.sign * means[1:]))
    needed = seeds_needed(est, plan.alpha)[1] if planning and est.seeds >= 2 else None
    return SimulatedOutcome(
        conf.verdict,
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
    truth: Truth, studies: int, plan: Plan, seed: int = 0, planning: bool = False, components: bool = True
) -> list[SimulatedOutcome]:
    """``studies`` simulated studies of ``truth`` analysed as a report would (numpy; no training)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(studies):
        o = analyse(draw(truth, rng), truth, plan, planning)
        if o is not None:
            out.append(o)
    return out


def scores_matrix(study: StudyOutputs, metric: str = "balanced_accuracy") -> np.ndarray:
    """Validation scores ``(K, S)`` of a complete simulated study, configurations in their order."""
    s, _ = study.scores("val", metric)
    return np.array([[s[study.row[(c, x)]] for x in study.seeds_of(c)] for c in study.configs])


def trained_part(study: StudyOutputs, seeds: dict[Config, int]) -> StudyOutputs:
    """The runs a race trained: each configuration's first ``seeds[c]`` seeds."""
    return study.select([i for i, (c, s) in enumerate(study.runs) if s < seeds.get(c, 0)])
