"""Which slot made each pooled prediction, and which slots a fold's choice may read."""

import numpy as np
import pytest

from imbal.study.analysis.folds import Folds


def test_test_predictions_come_from_the_fold_validation_from_the_one_before():
    ids = np.array([[0, 1, 2, 3, 0, 1], [2, 2, 0, 1, 3, 0]])
    folds = Folds(ids, 4)
    assert folds.repeats == 2
    assert np.array_equal(folds.owner("test"), ids)
    assert np.array_equal(folds.owner("val"), (ids - 1) % 4)


@pytest.mark.parametrize("k", [3, 5, 10])
def test_a_choice_reads_k_minus_2_slots_of_its_own_repeat(k):
    folds = Folds(np.tile(np.arange(k), (3, 2)), k)
    for j in range(k):
        mask = folds.choice_slots(1, j)
        assert mask.sum() == k - 2 and mask[1].sum() == k - 2 and not mask[[0, 2]].any()
        assert not mask[1, j] and not mask[1, (j - 1) % k]


@pytest.mark.parametrize("ids", [np.array([0, 1]), np.zeros((1, 0), dtype=int), np.array([[0, 3]])])
def test_bad_fold_ids_are_refused(ids):
    with pytest.raises(
        ValueError, match=r"fold ids must have shape \(repeats, images\) with values in \[0, 3\)"
    ):
        Folds(ids, 3)
