"""A study's per-run predictions on validation and test, as arrays (read from run folders or simulated), and,
for a cross-validated study, which fold each pooled image was tested in (docs/method.md,
"Cross-validated studies").

Every statistic of a report is computed from these arrays, so the simulation that checks the report's
error rates (:mod:`imbal.study.simulation.studies`) and the report itself run one code path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from imbal.engine.run_dir import POOL_INDEX
from imbal.errors import RunFolderError
from imbal.losses import parse_loss_name
from imbal.metrics import confusion_matrices, confusion_scores
from imbal.naming import HELD_OUT
from imbal.study.analysis.influence import scores_and_influence

Config = tuple[str, str]  # (sampler, loss)
# the comparator of every study (the plan's; imbal.study.analysis.plan re-exports it)
BASELINE: Config = ("uniform", "ce")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis, computed in float64."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@dataclass(frozen=True)
class Folds:
    """Fold ids ``(R, N)`` of every pooled image per repeat (the study's seeds, in order) and the fold count."""

    ids: np.ndarray
    k: int
    repeat_ids: tuple[int, ...] = ()  # the repeat (seed) of each row; () means 0..R-1

    def for_repeats(self, repeats: list[int]) -> Folds:
        """The rows of ``repeats``, in that order (a grid's columns are its baseline's repeats)."""
        have = list(self.repeat_ids) or list(range(self.repeats))
        missing = [r for r in repeats if r not in have]
        if missing:
            raise ValueError(f"no fold ids for repeat(s) {missing}; the folds hold repeats {have}")
        return Folds(self.ids[[have.index(r) for r in repeats]], self.k, tuple(repeats))

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids)
        if ids.ndim != 2 or ids.size == 0 or ids.min() < 0 or ids.max() >= self.k:
            raise ValueError(
                f"fold ids must have shape (repeats, images) with values in [0, {self.k}), got {ids.shape}"
            )

    @property
    def repeats(self) -> int:
        return self.ids.shape[0]

    def owner(self, split: str) -> np.ndarray:
        """``(R, N)``: the slot whose model made each image's prediction on ``split`` (test: its fold; val: the fold before)."""
        return self.ids if split == "test" else (self.ids - 1) % self.k

    def all_slots(self) -> np.ndarray:
        return np.ones((self.repeats, self.k), dtype=bool)

    def choice_slots(self, repeat: int, slot: int) -> np.ndarray:
        """The slots whose validation predictions choose for ``slot``: its repeat's, without it and the one validating on its test fold."""
        mask = np.zeros((self.repeats, self.k), dtype=bool)
        mask[repeat] = True
        mask[repeat, [slot, (slot - 1) % self.k]] = False
        return mask


def pool_labels(outputs: list[dict]) -> np.ndarray:
    """Every pooled image's label, from fold runs' outputs (each with its images' ``pool_index``)."""
    if any(POOL_INDEX not in o for o in outputs):
        raise RunFolderError(
            "a fold run's outputs hold no pool_index (trained before imbal 0.x cross-validation): train it again"
        )
    n = 1 + max(int(o[POOL_INDEX].max()) for o in outputs)
    labels = np.full(n, -1, dtype=np.int64)
    for o in outputs:
        labels[o[POOL_INDEX]] = o["labels"]
    return labels


def assemble_folds(
    where: str, fold_outputs: list[tuple[int, dict]], labels: np.ndarray, classes: int
) -> np.ndarray:
    """One pooled run's logits ``(N, C)`` from its folds' outputs of one split: each image exactly once."""
    logits = np.zeros((len(labels), classes), dtype=np.float32)
    filled = np.zeros(len(labels), dtype=bool)
    for fold, out in fold_outputs:
        idx = out[POOL_INDEX]
        if not np.array_equal(labels[idx], out["labels"]):
            raise RunFolderError(
                f"{where} fold {fold}: its labels disagree with the pool; the folds come from different data"
            )
        if filled[idx].any():
            raise RunFolderError(f"{where} fold {fold}: its images were already predicted by another fold")
        filled[idx] = True
        logits[idx] = out["logits"]
    if not filled.all():
        raise RunFolderError(
            f"{where}: its folds leave {int((~filled).sum())} pooled images without a prediction"
        )
    return logits


@dataclass
class SplitOutputs:
    """One split: true labels ``(n,)``, each run's hard predictions ``(R, n)`` and, when known, logits ``(R, n, C)``.

    Logits keep the dtype they were stored in (float32 from a run, float16 from an archive), so
    that calibration and post-hoc adjustment compute what they computed from the run's own file;
    probabilities are their float64 softmax. Simulated and published studies hold predictions only.
    """

    labels: np.ndarray
    preds: np.ndarray
    logits: np.ndarray | None = None
    _probs: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def probs(self) -> np.ndarray | None:
        if self._probs is None and self.logits is not None:
            self._probs = softmax(self.logits)
        return self._probs


@dataclass
class StudyOutputs:
    """Runs ``(config, seed)`` in row order, their validation and test outputs, and the data's facts."""

    runs: list[tuple[Config, int]]
    val: SplitOutputs
    test: SplitOutputs
    num_classes: int
    minority: int
    baseline: Config = BASELINE
    class_names: list[str] | None = None
    # a cross-validated study: its runs are (configuration, repeat), both splits the pooled images
    folds: Folds | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.row = {run: i for i, run in enumerate(self.runs)}
        self._seeds: dict[Config, list[int]] = {}
        for c, s in self.runs:
            self._seeds.setdefault(c, []).append(s)
        if len(self.row) != len(self.runs):
            raise ValueError("runs must be distinct (config, seed) pairs")
        if self.folds is not None and self.folds.ids.shape[1] != len(self.test.labels):
            raise ValueError(
                f"fold ids must cover the {len(self.test.labels)} pooled images, got shape {self.folds.ids.shape}"
            )
        for name in HELD_OUT:
            split = self.split(name)
            if split.preds.shape != (len(self.runs), len(split.labels)):
                raise ValueError(
                    f"{name} preds must have shape (runs, images)=({len(self.runs)}, {len(split.labels)}), "
                    f"got {split.preds.shape}"
                )

    @property
    def configs(self) -> list[Config]:
        return list(self._seeds)

    def seeds_of(self, config: Config) -> list[int]:
        return sorted(self._seeds.get(config, []))

    def grid(self) -> tuple[list[Config], list[int], np.ndarray, list[Config]]:
        """The complete part of the study: configurations with every seed of the baseline.

        Returns ``(configs, seeds, rows, left_out)``: the baseline first, then the others in run
        order; the baseline's seeds; run rows ``(K, S)``; configurations lacking one of those seeds.
        """
        seeds = self.seeds_of(self.baseline)
        if not seeds:
            raise ValueError(
                f"the baseline {' / '.join(self.baseline)} has no runs in this study (a comparison needs it)"
            )
        configs = [self.baseline] + [c for c in self.configs if c != self.baseline]
        full = [c for c in configs if set(seeds) <= set(self._seeds[c])]
        rows = np.array([[self.row[(c, s)] for s in seeds] for c in full])
        return full, seeds, rows, [c for c in configs if c not in full]

    def select(self, keep: list[int]) -> StudyOutputs:
        """The same study with only the runs at rows ``keep`` (a race's runs, a family of configurations)."""

        def part(split: SplitOutputs) -> SplitOutputs:
            logits = None if split.logits is None else split.logits[keep]
            return SplitOutputs(split.labels, split.preds[keep], logits)

        runs = [self.runs[i] for i in keep]
        facts = (self.num_classes, self.minority, self.baseline, self.class_names, self.folds)
        return StudyOutputs(runs, part(self.val), part(self.test), *facts)

    def split(self, name: str) -> SplitOutputs:
        if name not in HELD_OUT:
            raise ValueError(f"split must be one of {HELD_OUT}, got {name!r}")
        return self.val if name == "val" else self.test

    def scores(self, split: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-run scores ``(R,)`` and per-image influence values ``(R, n)`` (computed once)."""
        key = (split, metric)
        if key not in self._cache:
            s = self.split(split)
            self._cache[key] = scores_and_influence(
                metric, s.labels, s.preds, self.num_classes, self.minority, s.probs
            )
        return self._cache[key]

    def class_f1(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-run class F1 ``(R, C)`` and the split's class support ``(C,)``."""
        key = (split, "f1_per_class")
        if key not in self._cache:
            s = self.split(split)
            labels, preds = (torch.from_numpy(np.asarray(a, dtype=np.int64)) for a in (s.labels, s.preds))
            f1 = confusion_scores(confusion_matrices(labels, preds, self.num_classes))["f1_per_class"]
            self._cache[key] = (f1.numpy(), np.bincount(s.labels, minlength=self.num_classes))
        return self._cache[key]

    def zeroed(self, split: str) -> np.ndarray:
        """``(R, C)``: run r had F1 0 on class k, a class present in ``split``."""
        f1, support = self.class_f1(split)
        return (f1 == 0) & (support > 0)[None, :]


def extra_parts(config: Config, baseline: Config) -> int:
    """How much a configuration adds to the baseline: its loss terms (coefficient > 0) that the baseline lacks, plus a sampler change."""
    sampler, loss = config
    try:
        terms = {t for c, t in parse_loss_name(loss) if c > 0}
        base = {t for c, t in parse_loss_name(baseline[1]) if c > 0}
    except ValueError:
        return 99
    return len(terms - base) + (sampler != baseline[0])


def simplicity(config: Config, baseline: Config) -> tuple[bool, int]:
    """Sort key, simplest first: the baseline itself, then the fewest extra parts."""
    return (config != baseline, extra_parts(config, baseline))
