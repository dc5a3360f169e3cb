"""Cross-validated studies: each image's one test and one validation prediction per repeat, and their statistics.

A cross-validated study (:mod:`imbal.data.folds`) trains, per configuration and repeat, one model
per fold ("slot" j): it tests on fold j and validates on fold j + 1. Pooled, every labelled image
has one test prediction (from slot ``fold``) and one validation prediction (from slot ``fold - 1``)
per repeat, so the study reads as :class:`StudyOutputs` whose "seeds" are the repeats and whose
two splits hold the same N images, plus the fold ids. What changes is the statistics
(docs/method.md, "Cross-validated studies"):

- **A difference** is the pooled one: the metric over all N images per repeat (a ratio from one
  confusion matrix), averaged over repeats.
- **Its model level** comes from the slots: the J = repeats x folds per-fold differences vary by
  their model's luck (seed and training part) and by their own fold's images. The latter is known
  from the images' influence values, so the model share is ``max(0, var(d_j) - mean V_j) / J``.
  The image level is the pooled difference's influence over the N images. The two add like a
  seed level and an image level (:class:`Estimate`, ``J`` "seeds").
- **The choice is cross-fitted**: slot j's alternative is chosen on the validation
  predictions of the slots other than j and j - 1 of its repeat, i.e. on images outside its test
  fold, by models other than itself. Its test effect then carries neither the image-level nor the
  model-level luck that its choice saw.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from imbal.metrics import METRICS, confusion_matrices, confusion_scores
from imbal.study.analysis.influence import grouped_confusion_influence, scores_and_influence
from imbal.study.analysis.outputs import Folds, StudyOutputs
from imbal.study.analysis.stats import Estimate, within_class_var


@dataclass(frozen=True)
class Runs:
    """One split's predictions ``(M, R, N)`` (configuration, repeat, image) scored by ``metric``; probabilities when known."""

    labels: np.ndarray
    preds: np.ndarray
    probs: np.ndarray | None
    num_classes: int
    minority: int
    metric: str

    @classmethod
    def of(cls, study: StudyOutputs, split: str, rows: np.ndarray, metric: str) -> Runs:
        """The runs ``rows`` ``(M, R)`` of a study's ``split``."""
        s = study.split(split)
        probs = None if s.probs is None else s.probs[rows]
        return cls(s.labels, s.preds[rows], probs, study.num_classes, study.minority, metric)

    def score(self, r: int, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores ``(M,)`` and influence values ``(M, n)`` of repeat ``r`` on ``images``."""
        probs = None if self.probs is None else self.probs[:, r][:, images]
        return scores_and_influence(
            self.metric,
            self.labels[images],
            self.preds[:, r][:, images],
            self.num_classes,
            self.minority,
            probs,
        )

    def slot_scores(
        self, r: int, owner: np.ndarray, slots: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores ``(M, J)`` of repeat ``r`` on each slot's own images, each image's influence ``(M, n)`` on its
        slot's score, and those images' positions ``(n,)``."""
        images = np.flatnonzero(np.isin(owner, slots))
        if METRICS[self.metric].from_confusion:
            group = np.searchsorted(slots, owner[images])
            scores, influence = grouped_confusion_influence(
                self.metric,
                self.labels[images],
                self.preds[:, r][:, images],
                group,
                len(slots),
                self.num_classes,
                self.minority,
            )
            return scores, influence, images
        scores, influence = (
            np.zeros((self.preds.shape[0], len(slots))),
            np.zeros((self.preds.shape[0], len(images))),
        )
        for j, slot in enumerate(slots):
            mine = owner[images] == slot
            scores[:, j], influence[:, mine] = self.score(r, images[mine])
        return scores, influence, images

    def zeroed(self, r: int, images: np.ndarray) -> np.ndarray:
        """``(M, C)``: F1 0 on a class present among ``images`` in repeat ``r``."""
        labels = torch.from_numpy(np.asarray(self.labels[images], dtype=np.int64))
        preds = torch.from_numpy(np.asarray(self.preds[:, r][:, images], dtype=np.int64))
        f1 = confusion_scores(confusion_matrices(labels, preds, self.num_classes))["f1_per_class"].numpy()
        present = np.bincount(labels.numpy(), minlength=self.num_classes) > 0
        return (f1 == 0) & present[None, :]


def view_scores(runs: Runs, owner: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-repeat pooled scores ``(M, R)`` over the images whose prediction came from a slot in ``mask``
    (``owner`` ``(R, N)``: each prediction's slot), and influence values ``(M, R, N)``, 0 outside."""
    m, repeats, n = runs.preds.shape
    scores, influence = np.full((m, repeats), np.nan), np.zeros((m, repeats, n))
    for r in range(repeats):
        images = np.flatnonzero(mask[r][owner[r]])
        if len(images):
            scores[:, r], influence[:, r][:, images] = runs.score(r, images)
    return scores, influence


def view_zeroed(runs: Runs, owner: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(M, R, C)``: per repeat, the configuration's F1 was 0 on a class present among the images of ``mask``."""
    m, repeats, _ = runs.preds.shape
    out = np.zeros((m, repeats, runs.num_classes), dtype=bool)
    for r in range(repeats):
        images = np.flatnonzero(mask[r][owner[r]])
        if len(images):
            out[:, r] = runs.zeroed(r, images)
    return out


def cv_estimates(runs: Runs, owner: np.ndarray, mask: np.ndarray) -> list[Estimate]:
    """Configurations ``1..M-1`` minus configuration 0, paired on the images and slots of ``mask`` (module doc)."""
    m = runs.preds.shape[0]
    return cv_pairs(runs, owner, mask, np.arange(1, m), np.zeros(m - 1, dtype=int))


def cv_pairs(
    runs: Runs, owner: np.ndarray, mask: np.ndarray, first: np.ndarray, second: np.ndarray
) -> list[Estimate]:
    """Configuration ``first[p]`` minus ``second[p]`` for every pair p, paired on the images and slots of ``mask``.

    Every configuration is scored once, so all M (M - 1) pairs of a race's round cost M scorings.
    """
    a, b = np.asarray(first, dtype=int), np.asarray(second, dtype=int)
    pooled, infl = view_scores(runs, owner, mask)
    used = [r for r in range(len(mask)) if mask[r].any()]
    diff = (pooled[a] - pooled[b])[:, used].mean(1)
    g = (infl[a] - infl[b])[:, used].mean(1)  # (P, N)
    seen = np.zeros(len(runs.labels), dtype=bool)
    for r in used:
        seen |= mask[r][owner[r]]
    image_var = within_class_var(g[:, seen], runs.labels[seen])
    slot_d, slot_v = [], []
    for r in used:
        slots = np.flatnonzero(mask[r])
        s, gi, images = runs.slot_scores(r, owner[r], slots)
        for j, slot in enumerate(slots):
            mine = owner[r][images] == slot
            slot_d.append(s[a, j] - s[b, j])
            slot_v.append(within_class_var(gi[a][:, mine] - gi[b][:, mine], runs.labels[images][mine]))
    d, v = np.array(slot_d).T, np.array(slot_v).T  # (P, J)
    j = d.shape[1]
    # each slot's difference holds its model's luck and its own fold's image noise (known): the rest is
    # the model level. Centred within each repeat: a repeat's folds cover the same N images, so their
    # image noise sums to the same total in every repeat, which a spread around one grand mean would miss
    per_repeat = [int(mask[r].sum()) for r in used]
    starts = np.cumsum([0, *per_repeat])
    centred = np.concatenate(
        [d[:, lo:hi] - d[:, lo:hi].mean(1, keepdims=True) for lo, hi in itertools.pairwise(starts)], axis=1
    )
    dof = sum(n - 1 for n in per_repeat)
    spread = (centred**2).sum(1) / dof if dof > 0 else np.zeros(len(diff))
    model_var = np.maximum(0.0, spread - v.mean(1)) / j if dof > 0 else np.zeros(len(diff))
    return [
        Estimate(float(diff[i]), float(model_var[i]), max(0.0, float(image_var[i])), j, int(seen.sum()))
        for i in range(len(diff))
    ]


def procedure_runs(test: Runs, folds: Folds, chosen: np.ndarray) -> Runs:
    """Two configurations: the baseline (row 0 of ``test``) and the procedure, which predicts each image of
    slot j with the configuration slot j chose (``chosen`` ``(R, K)``, rows of ``test``)."""
    _, repeats, n = test.preds.shape
    pick = chosen[np.arange(repeats)[:, None], folds.ids]  # (R, N) the configuration behind each image
    r_idx, i_idx = np.arange(repeats)[:, None], np.arange(n)[None, :]
    preds = np.stack([test.preds[0], test.preds[pick, r_idx, i_idx]])
    probs = None if test.probs is None else np.stack([test.probs[0], test.probs[pick, r_idx, i_idx]])
    return Runs(test.labels, preds, probs, test.num_classes, test.minority, test.metric)
