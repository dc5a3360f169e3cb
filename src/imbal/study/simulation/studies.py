"""Studies with known truth, with the noise of the real ones, to measure the report's error rates (docs/method.md).

A simulated study has K configurations x S seeds. Each run trains several "epochs"; its population
recall per class at an epoch is the configuration's recall plus a shift of its seed (shared by all
configurations of that seed), of the run, and of the epoch, and the run keeps the epoch with the
best validation balanced accuracy, as training does. Each run answers every image of a freshly
drawn validation and test set correctly with that recall, through a latent score

    z_{c,s,i} = a * d_i + b * e_{c,i} + sqrt(1 - a^2 - b^2) * eps_{c,s,i}

with an image's difficulty ``d_i`` shared by every configuration, its difficulty for configuration
c, ``e_{c,i}``, shared by c's seeds (what makes one configuration right where another is wrong:
the image-level noise of a paired difference, which more seeds do not remove), and the run's own
noise ``eps``. A wrong answer names the image's usual confuser most of the time.

The noise parameters are fitted (:mod:`imbal.study.simulation.calibrate`) so that the simulated
studies reproduce, on validation and on test, three numbers measured on a published study: the
spread of one configuration's balanced accuracy over seeds, the seed SD of a paired difference, and
the image-level standard error of a paired difference. :data:`RETINA` and :data:`VESSEL` are the
fits to the committed RetinaMNIST and VesselMNIST3D studies. A configuration's true effect is the
shift of every class's recall (its balanced accuracy moves by the same amount).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal, overload

import numpy as np
from scipy.special import ndtri

from imbal.data.folds import assign_folds
from imbal.study.analysis.decision import decide
from imbal.study.analysis.outputs import BASELINE, Config, Folds, SplitOutputs, StudyOutputs
from imbal.study.analysis.plan import Plan
from imbal.study.analysis.stats import Verdict, seeds_needed

# the study's 15 configurations plus la-ce, baseline first
CONFIGS: list[Config] = [
    BASELINE,
    *[("uniform", loss) for loss in ("ce+f1", "ce+mcc", "f1", "focal", "mcc", "la-ce")],
    *[("oversample", loss) for loss in ("ce", "ce+f1", "ce+mcc", "f1", "focal", "mcc")],
    *[("weights", loss) for loss in ("ce", "ce+f1", "ce+mcc")],
]
# what a calibration reproduces, per split: one configuration's BA spread over seeds, the seed SD
# of a paired difference, the image-level SE of a paired difference (medians over configurations)
TARGET_NAMES = ("configuration SD over seeds", "seed SD of a difference", "image SE of a difference")


@dataclass(frozen=True)
class Calibration:
    """A noise model fitted to a published study (see the module doc and ``calibrate``)."""

    name: str
    recall: tuple[float, ...]  # a typical configuration's test recall per class (mean over all runs)
    val_counts: tuple[int, ...]
    test_counts: tuple[int, ...]
    seed_sd: float  # recall shift of a seed, shared by every configuration
    run_sd: float  # of a run, per class
    epoch_sd: float  # of an epoch of a run, per class
    val_loadings: tuple[float, float]  # (a, b): shared and configuration-specific image difficulty
    test_loadings: tuple[float, float]
    # the published study's measured numbers (TARGET_NAMES), validation then test
    measured: tuple[tuple[float, float, float], tuple[float, float, float]]
    pool_counts: tuple[
        int, ...
    ] = ()  # every labelled image per class (train + val + test): what cross-validation pools
    epochs: int = 5  # epochs a run chooses its best from (validation balanced accuracy)


# Fitted by `python -m imbal.study.simulation.calibrate runs/reproduction/outputs.npz`: the archive of the
# report published as docs/reproduction/study (80 runs)
RETINA = Calibration(
    "RetinaMNIST",
    recall=(0.729, 0.207, 0.297, 0.354, 0.214),
    val_counts=(54, 12, 28, 20, 6),
    test_counts=(174, 46, 92, 68, 20),
    seed_sd=0.0052,
    run_sd=0.0099,
    epoch_sd=0.0163,
    val_loadings=(0.483, 0.5338),
    test_loadings=(0.6227, 0.3766),
    measured=((0.0209, 0.0384, 0.0298), (0.0233, 0.0306, 0.0118)),
    pool_counts=(714, 186, 326, 282, 92),
)
# Fitted the same way on runs/vessel/outputs.npz (docs/reproduction/vessel, 80 runs)
VESSEL = Calibration(
    "VesselMNIST3D",
    recall=(0.818, 0.779),
    val_counts=(169, 22),
    test_counts=(339, 43),
    seed_sd=0.0167,
    run_sd=0.0123,
    epoch_sd=0.0049,
    val_loadings=(0.1087, 0.7921),
    test_loadings=(0.5099, 0.4457),
    measured=((0.0235, 0.0309, 0.0370), (0.0335, 0.0377, 0.0184)),
    pool_counts=(1693, 215),
)
CALIBRATIONS = {"retina": RETINA, "vessel": VESSEL}


@dataclass(frozen=True)
class Truth:
    """Known truth of a study: each configuration's true balanced-accuracy effect and the noise model.

    Stress options: ``run_sd_scale`` multiplies a configuration's run and epoch spread (a noisy
    configuration), ``heavy_tails`` draws the run shifts from a t distribution with that many degrees
    of freedom (scaled to the same SD) instead of a normal one.
    """

    effects: np.ndarray  # (K,) true balanced-accuracy difference of each configuration to a reference
    calibration: Calibration = RETINA
    seeds: int = 5
    configs: list[Config] = field(default_factory=lambda: list(CONFIGS))
    run_sd_scale: tuple[float, ...] | None = None
    heavy_tails: float | None = None

    def __post_init__(self) -> None:
        e = np.asarray(self.effects, dtype=float)
        if e.shape != (len(self.configs),):
            raise ValueError(
                f"effects must have one value per configuration ({len(self.configs)}), got {e.shape}"
            )
        if self.run_sd_scale is not None and len(self.run_sd_scale) != len(self.configs):
            raise ValueError("run_sd_scale must have one value per configuration")
        r = self.recall
        if not ((r > 0) & (r < 1)).all():
            raise ValueError("recalls (the calibration's plus the effects) must lie strictly between 0 and 1")

    @property
    def recall(self) -> np.ndarray:
        """Population recalls ``(K, C)``: every class of a configuration shifted by its effect."""
        return np.asarray(self.calibration.recall)[None, :] + np.asarray(self.effects, dtype=float)[:, None]

    def effect(self, config: Config) -> float:
        """True balanced-accuracy difference of ``config`` to the first configuration (the baseline)."""
        e = np.asarray(self.effects, dtype=float)
        return float(e[self.configs.index(config)] - e[0])


def _shifts(truth: Truth, rng: np.random.Generator) -> np.ndarray:
    """Recall shifts ``(K, S, E, C)``: seed + run + epoch."""
    cal = truth.calibration
    k, s, e, c = len(truth.configs), truth.seeds, cal.epochs, len(cal.recall)
    scale = np.ones(k) if truth.run_sd_scale is None else np.asarray(truth.run_sd_scale, dtype=float)
    if truth.heavy_tails is None:
        run = rng.standard_normal((k, s, 1, c))
    else:  # a t variate scaled to unit variance
        df = truth.heavy_tails
        run = rng.standard_t(df, (k, s, 1, c)) * math.sqrt((df - 2) / df)
    return rng.normal(0, cal.seed_sd, s)[None, :, None, None] + scale[:, None, None, None] * (
        cal.run_sd * run + rng.normal(0, cal.epoch_sd, (k, s, e, c))
    )


def _answers(
    rng: np.random.Generator, recall: np.ndarray, labels: np.ndarray, loadings: tuple[float, float], k: int
) -> np.ndarray:
    """Hard predictions ``(R, n)`` of runs ``recall`` ``(R, C)`` (configuration-major, R = k x runs each)."""
    c, n, r = recall.shape[1], len(labels), recall.shape[0]
    a, b = loadings
    shared = rng.standard_normal(n)
    own = np.repeat(rng.standard_normal((k, n)), r // k, axis=0)
    latent = a * shared[None] + b * own + math.sqrt(max(0.0, 1 - a * a - b * b)) * rng.standard_normal((r, n))
    correct = latent < ndtri(np.clip(recall[:, labels], 1e-4, 1 - 1e-4))
    # a wrong answer: the image's usual confuser (70%), else any other class
    confuser = (labels + rng.integers(1, c, n)) % c
    other = (labels[None] + rng.integers(1, c, (r, n))) % c
    wrong = np.where(rng.random((r, n)) < 0.7, confuser[None], other)
    return np.where(correct, labels[None], wrong)


def _balanced_accuracy(preds: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    return np.stack([(preds[:, labels == j] == j).mean(1) for j in range(classes)], 1).mean(1)


def draw(truth: Truth, rng: np.random.Generator, minority: int | None = None) -> StudyOutputs:
    """One simulated study: every configuration x seed, each run at its best validation epoch."""
    cal = truth.calibration
    k, s, e, c = len(truth.configs), truth.seeds, cal.epochs, len(cal.recall)
    recall = (truth.recall[:, None, None, :] + _shifts(truth, rng)).reshape(k * s * e, c)
    val_labels, test_labels = (np.repeat(np.arange(c), n) for n in (cal.val_counts, cal.test_counts))
    val = _answers(rng, recall, val_labels, cal.val_loadings, k)
    test = _answers(rng, recall, test_labels, cal.test_loadings, k)
    best = _balanced_accuracy(val, val_labels, c).reshape(k * s, e).argmax(1)
    rows = np.arange(k * s) * e + best
    runs = [(config, seed) for config in truth.configs for seed in range(s)]
    return StudyOutputs(
        runs,
        SplitOutputs(val_labels, val[rows]),
        SplitOutputs(test_labels, test[rows]),
        c,
        int(np.argmin(cal.test_counts)) if minority is None else minority,
        baseline=truth.configs[0],
    )


@dataclass
class _Pool:
    """The images of a simulated cross-validation pool and what every model shares about each."""

    labels: np.ndarray
    shared: np.ndarray  # difficulty for every configuration (N,)
    own: np.ndarray  # difficulty per configuration (K, N)
    confuser: np.ndarray  # the class a wrong answer names most of the time (N,)
    loadings: tuple[float, float]

    def answers(
        self, rng: np.random.Generator, recall: np.ndarray, images: np.ndarray, epochs: int
    ) -> np.ndarray:
        """Hard predictions ``(K * epochs, n)`` of models ``recall`` ``(K * epochs, C)`` on ``images``."""
        a, b = self.loadings
        c, y, rows = recall.shape[1], self.labels[images], recall.shape[0]
        z = a * self.shared[images][None] + b * np.repeat(self.own[:, images], epochs, axis=0)
        z = z + math.sqrt(max(0.0, 1 - a * a - b * b)) * rng.standard_normal((rows, len(images)))
        correct = z < ndtri(np.clip(recall[:, y], 1e-4, 1 - 1e-4))
        other = (y[None] + rng.integers(1, c, (rows, len(images)))) % c
        wrong = np.where(rng.random((rows, len(images))) < 0.7, self.confuser[images][None], other)
        return np.where(correct, y[None], wrong)


def _slot_shift(truth: Truth, rng: np.random.Generator, partition: np.ndarray | float) -> np.ndarray:
    """Recall shifts ``(K, E, C)`` of one slot's models: seed (shared) + partition + run + epoch."""
    cal = truth.calibration
    k, e, c = len(truth.configs), cal.epochs, len(cal.recall)
    scale = np.ones(k) if truth.run_sd_scale is None else np.asarray(truth.run_sd_scale, dtype=float)
    if truth.heavy_tails is None:
        run = rng.standard_normal((k, 1, c))
    else:
        df = truth.heavy_tails
        run = rng.standard_t(df, (k, 1, c)) * math.sqrt((df - 2) / df)
    noise = cal.run_sd * run + rng.normal(0, cal.epoch_sd, (k, e, c))
    return rng.normal(0, cal.seed_sd) + partition + scale[:, None, None] * noise


def draw_folds(
    truth: Truth,
    rng: np.random.Generator,
    folds: int = 5,
    partition_sd: float = 0.0,
    minority: int | None = None,
) -> StudyOutputs:
    """One simulated cross-validated study: ``truth.seeds`` repeats x ``folds`` folds over the calibration's pool.

    Every labelled image has one difficulty and one difficulty per configuration (the test split's
    loadings), whichever model reads it: a model that validates on an image and another that tests
    on it see the same image, which is what a choice made on the test fold's images would exploit.
    Each slot's model has a seed shift (shared by the configurations of that repeat and fold), its
    own run and epoch shifts, and keeps its best epoch on its validation fold. ``partition_sd``
    (a stress setting) adds a shift per configuration and repeat that all its folds share: luck of
    the partition, which the spread over folds cannot see.
    """
    cal = truth.calibration
    if not cal.pool_counts:
        raise ValueError(f"calibration {cal.name} has no pool_counts: no cross-validation can be simulated")
    k, e, c, reps = len(truth.configs), cal.epochs, len(cal.recall), truth.seeds
    labels = np.repeat(np.arange(c), cal.pool_counts)
    n = len(labels)
    pool = _Pool(
        labels,
        rng.standard_normal(n),
        rng.standard_normal((k, n)),
        (labels + rng.integers(1, c, n)) % c,
        cal.test_loadings,
    )
    ids = np.stack([assign_folds(labels, folds, int(rng.integers(2**31))) for _ in range(reps)])
    preds = {split: np.zeros((k, reps, n), dtype=np.int64) for split in ("val", "test")}
    for r in range(reps):
        partition = rng.normal(0, partition_sd, (k, 1, c)) if partition_sd else 0.0
        for j in range(folds):
            recall = (truth.recall[:, None, :] + _slot_shift(truth, rng, partition)).reshape(k * e, c)
            test_images, val_images = np.flatnonzero(ids[r] == j), np.flatnonzero(ids[r] == (j + 1) % folds)
            val, test = pool.answers(rng, recall, val_images, e), pool.answers(rng, recall, test_images, e)
            rows = np.arange(k) * e + _balanced_accuracy(val, labels[val_images], c).reshape(k, e).argmax(1)
            preds["val"][:, r, val_images] = val[rows]
            preds["test"][:, r, test_images] = test[rows]
    return StudyOutputs(
        [(config, r) for config in truth.configs for r in range(reps)],
        SplitOutputs(labels, preds["val"].reshape(k * reps, n)),
        SplitOutputs(labels, preds["test"].reshape(k * reps, n)),
        c,
        int(np.argmin(cal.pool_counts)) if minority is None else minority,
        baseline=truth.configs[0],
        folds=Folds(ids, folds),
    )


@dataclass
class SimulatedOutcome:
    """What one simulated study's analysis said, next to the truth."""

    verdict: Verdict  # the confirmation's verdict on the primary
    false_claim: bool  # any better/worse verdict on the primary that the truth contradicts
    estimate: float  # the confirmation's test effect
    truth: float  # the true effect of what it confirmed (mean over its cross-fitted folds)
    covered: bool  # the confirmation's 1 - alpha interval holds the truth
    test_choice_estimate: float  # the test effect had the test chosen (for the selection bias)
    test_choice_truth: float
    baseline_kept: bool  # the findings recommend the baseline (or no change)
    baseline_screened: bool  # the baseline failed a validation screen (reported; changes nothing)
    seeds_needed: int | None  # the planning answer for a difference (None: more than 30)
    seed_var: float = math.nan  # the confirmation's variance components
    image_var: float = math.nan


def analyse(study: StudyOutputs, truth: Truth, plan: Plan, planning: bool = False) -> SimulatedOutcome | None:
    """The report's decision on one simulated study (None: nothing to confirm)."""
    d = decide(study, plan, planning=False, secondary_rows=False)
    conf = d.confirmation
    if conf is None:
        return None
    effects = {c: truth.effect(c) for c in truth.configs}
    true_effect = float(np.mean([effects[c] for c in conf.fold_choices]))
    claims = [(true_effect, conf.verdict)]
    primary = d.table[d.table.metric == plan.primary] if not d.table.empty else d.table
    for r in primary.itertuples():
        if r.role != "confirmatory":
            claims.append((effects[(r.sampler, r.loss)], r.verdict))
    false_claim = any(
        (v is Verdict.BETTER and plan.sign * t <= 0) or (v is Verdict.WORSE and plan.sign * t >= 0)
        for t, v in claims
    )
    est = conf.estimate
    low, high = est.interval(1 - plan.alpha)
    means = d.grid.scores("test", plan.primary)[0].mean(1)
    pick = 1 + int(np.argmax(plan.sign * means[1:]))
    needed = seeds_needed(est, plan.alpha)[1] if planning and est.seeds >= 2 else None
    return SimulatedOutcome(
        conf.verdict,
        false_claim,
        est.difference,
        true_effect,
        bool(low <= true_effect <= high),
        float(means[pick] - means[0]),
        effects[d.grid.configs[pick]],
        d.recommendation in (None, d.baseline),
        not d.screens[d.baseline].passed,
        needed,
        est.seed_var,
        est.image_var,
    )


def run(
    truth: Truth,
    studies: int,
    plan: Plan,
    seed: int = 0,
    planning: bool = False,
    folds: int = 0,
    partition_sd: float = 0.0,
) -> list[SimulatedOutcome]:
    """``studies`` simulated studies of ``truth`` analysed as a report would (numpy; no training);
    ``folds`` > 0: cross-validated (:func:`draw_folds`, ``truth.seeds`` repeats)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(studies):
        study = draw_folds(truth, rng, folds, partition_sd) if folds else draw(truth, rng)
        o = analyse(study, truth, plan, planning)
        if o is not None:
            out.append(o)
    return out


def pair(effect: float, calibration: Calibration, seeds: int) -> Truth:
    """Two configurations, the second ``effect`` better: the setting of the interval and power checks."""
    return Truth(np.array([0.0, effect]), calibration, seeds, configs=list(CONFIGS[:2]))


def null(calibration: Calibration, seeds: int = 5, configurations: int = 16) -> Truth:
    """``configurations`` configurations of equal truth."""
    return Truth(np.zeros(configurations), calibration, seeds, configs=list(CONFIGS[:configurations]))


def with_seeds(truth: Truth, seeds: int) -> Truth:
    return replace(truth, seeds=seeds)


@overload
def scores_matrix(study: StudyOutputs, metric: str = ..., influence: Literal[False] = ...) -> np.ndarray: ...
@overload
def scores_matrix(
    study: StudyOutputs, metric: str, influence: Literal[True]
) -> tuple[np.ndarray, np.ndarray]: ...
def scores_matrix(
    study: StudyOutputs, metric: str = "balanced_accuracy", influence: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Validation scores ``(K, S)`` of a complete simulated study, configurations in their order, and with
    ``influence`` each run's validation images' influence on its score ``(K, S, n)``."""
    s, g = study.scores("val", metric)
    rows = np.array([[study.row[(c, x)] for x in study.seeds_of(c)] for c in study.configs])
    return (s[rows], g[rows]) if influence else s[rows]


def trained_part(study: StudyOutputs, seeds: dict[Config, int]) -> StudyOutputs:
    """The runs a race trained: each configuration's first ``seeds[c]`` seeds."""
    return study.select([i for i, (c, s) in enumerate(study.runs) if s < seeds.get(c, 0)])
