"""Cross-validation folds: a partition per repeat, stratified, groups kept whole, seeded; the engine's fold runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from imbal.data import load_dataset
from imbal.data.dataset import make_splits
from imbal.data.folder import load_image_folder
from imbal.data.folds import assign_folds, cv_splits, fold_balance, fold_parts, grouped_split
from imbal.errors import DataError

RNG = np.random.default_rng(20261205)


def _random_problem(i: int) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(i)
    n, classes = int(rng.integers(12, 400)), int(rng.integers(2, 7))
    # a skewed class mix, like the data sets this is for
    p = rng.dirichlet(np.full(classes, 0.7))
    return rng.choice(classes, n, p=p), int(rng.integers(3, 9))


@pytest.mark.parametrize("case", range(60))
def test_folds_partition_the_pool_and_stay_within_one_image_per_class(case):
    labels, k = _random_problem(case)
    folds = assign_folds(labels, k, seed=case)
    assert folds.shape == labels.shape and set(np.unique(folds)) <= set(range(k))
    # every class: each fold within 1 image of n_c / k; every fold within 1 of N / k
    assert fold_balance(labels, folds, k) < 1
    assert np.abs(np.bincount(folds, minlength=k) - len(labels) / k).max() < 1
    for fold in range(k):
        parts = fold_parts(folds, fold, k)
        together = np.concatenate([parts.train, parts.val, parts.test])
        assert np.array_equal(np.sort(together), np.arange(len(labels)))  # each image once
        assert (folds[parts.test] == fold).all() and (folds[parts.val] == (fold + 1) % k).all()
    # pooled over the folds, each image is tested once and validated once
    tested = np.concatenate([fold_parts(folds, f, k).test for f in range(k)])
    validated = np.concatenate([fold_parts(folds, f, k).val for f in range(k)])
    assert np.array_equal(np.sort(tested), np.arange(len(labels)))
    assert np.array_equal(np.sort(validated), np.arange(len(labels)))


@pytest.mark.parametrize("case", range(60))
def test_groups_never_straddle_folds(case):
    labels, k = _random_problem(case)
    rng = np.random.default_rng(1000 + case)
    # patients with 1 to 8 images each; a patient's images share its label mostly, not always
    sizes = rng.integers(1, max(2, min(9, len(labels) // (2 * k))), len(labels))
    groups = np.repeat(np.arange(len(labels)), sizes)[: len(labels)].astype(str)
    assert len(np.unique(groups)) >= k
    folds = assign_folds(labels, k, seed=case, groups=groups)
    for g in np.unique(groups):
        assert len(np.unique(folds[groups == g])) == 1
    assert set(np.unique(folds)) == set(range(k))


def test_singleton_groups_are_as_balanced_as_no_groups():
    labels, k = _random_problem(3)
    folds = assign_folds(labels, k, seed=0, groups=np.arange(len(labels)).astype(str))
    assert fold_balance(labels, folds, k) < 1


def test_grouped_balance_is_close_where_groups_allow():
    rng = np.random.default_rng(7)
    labels = rng.choice(3, 600, p=[0.7, 0.2, 0.1])
    groups = (np.arange(600) // 2).astype(str)  # pairs of images per patient
    folds = assign_folds(labels, 5, seed=0, groups=groups)
    assert fold_balance(labels, folds, 5) <= 2.0


def test_folds_are_seeded_and_repeats_differ():
    labels, k = _random_problem(5)
    assert np.array_equal(assign_folds(labels, k, 3), assign_folds(labels, k, 3))
    assert not np.array_equal(assign_folds(labels, k, 3), assign_folds(labels, k, 4))


@pytest.mark.parametrize(
    ("k", "groups", "match"),
    [
        (2, None, r"cv folds must be an integer >= 3 \(test, validation, training\), got 2"),
        (True, None, r"cv folds must be an integer >= 3"),
        (3, np.array(["a", "a", "b", "b"] * 3), r"3 folds need at least 3 groups, got 2"),
        (3, np.array(["a"]), r"groups must have one entry per image, shape \(12,\), got \(1,\)"),
    ],
)
def test_bad_fold_requests_are_refused(k, groups, match):
    with pytest.raises(DataError, match=match):
        assign_folds(np.arange(12) % 2, k, 0, groups)


def test_fold_out_of_range_is_refused():
    with pytest.raises(DataError, match=r"cv fold must lie in \[0, 3\), got 3"):
        fold_parts(np.arange(9) % 3, 3, 3)


def test_cv_splits_pool_every_split_and_record_positions():
    splits = load_dataset("synthetic")
    n = sum(len(splits[s]) for s in ("train", "val", "test"))
    seen = []
    for fold in range(4):
        part = cv_splits(splits, 4, fold, repeat=1)
        index = {s: part[s].pool_index.numpy() for s in ("train", "val", "test")}
        assert sum(len(v) for v in index.values()) == n
        assert len(np.intersect1d(index["test"], index["train"])) == 0
        assert len(np.intersect1d(index["val"], index["train"])) == 0
        assert len(np.intersect1d(index["val"], index["test"])) == 0
        pool_labels = torch.cat([splits[s].labels for s in ("train", "val", "test")])
        assert torch.equal(part.test.labels, pool_labels[index["test"]])
        seen.append(index["test"])
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(n))


def test_cv_over_must_name_train():
    with pytest.raises(
        DataError, match=r"cv over must be distinct splits of .* including train, got \['val', 'test'\]"
    ):
        cv_splits(load_dataset("synthetic"), 3, 0, 0, over=("val", "test"))


def test_grouped_split_keeps_patients_in_one_split():
    rng = np.random.default_rng(0)
    labels = rng.choice(2, 300, p=[0.8, 0.2])
    groups = (np.arange(300) // 3).astype(str)
    parts = grouped_split(labels, groups, (0.6, 0.2, 0.2), seed=0)
    owner = {}
    for j, idx in enumerate(parts):
        for g in set(groups[idx.numpy()]):
            assert owner.setdefault(g, j) == j
    assert sum(len(p) for p in parts) == 300
    assert abs(len(parts[0]) / 300 - 0.6) < 0.05


def test_make_splits_carries_groups_through_subsets():
    images = {s: torch.zeros(4, 1, 8, 8, dtype=torch.uint8) for s in ("train", "val", "test")}
    labels = {s: torch.tensor([0, 1, 0, 1]) for s in ("train", "val", "test")}
    groups = {s: np.array([f"{s}{i}" for i in range(4)]) for s in ("train", "val", "test")}
    splits = make_splits(images, labels, groups=groups)
    assert list(splits.train.subset([2, 0]).groups) == ["train2", "train0"]


def test_the_folder_loader_reads_a_group_column_and_keeps_patients_together(tmp_path):
    rows = []
    for i in range(60):
        Image.fromarray(np.full((8, 8), i * 4, dtype=np.uint8)).save(tmp_path / f"{i}.png")
        rows.append({"Filename": f"{i}.png", "Class_Int": int(i % 5 == 0), "patient": f"p{i // 3}"})
    pd.DataFrame(rows).to_csv(tmp_path / "cases.csv", index=False)
    splits = load_image_folder(
        tmp_path / "cases.csv", size=8, channels=1, group_column="patient", class_names_column=None
    )
    by_split = {s: set(splits[s].groups.tolist()) for s in ("train", "val", "test")}
    assert not (by_split["train"] & by_split["test"]) and not (by_split["train"] & by_split["val"])
    assert not (by_split["val"] & by_split["test"])
    folds = cv_splits(splits, 3, 0, 0)
    parts = {s: set(folds[s].groups.tolist()) for s in ("train", "val", "test")}
    assert not (parts["train"] & parts["test"]) and not (parts["val"] & parts["test"])
