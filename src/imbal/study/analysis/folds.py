"""Which fold each pooled image of a cross-validated study was tested in, per repeat (docs/method.md, "Cross-validated studies")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
