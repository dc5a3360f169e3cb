import functools
import operator

import pytest
import torch

from imbal.samplers import SAMPLERS, build_sampler

LABELS = torch.tensor([0] * 70 + [1] * 20 + [2] * 10)


def batches(name, **kw):
    s = build_sampler(name, LABELS, kw.pop("batch_size", 10), **kw)
    return s, list(s)


@pytest.mark.parametrize("name", SAMPLERS)
def test_length_and_batch_size(name):
    s, bs = batches(name)
    assert len(bs) == len(s)
    expected = 3 if name == "undersample" else 10  # 3 classes x 10 minority = 30 -> 3 batches
    assert len(s) == expected
    assert all(len(b) == 10 for b in bs)


def test_uniform_is_a_permutation():
    _, bs = batches("uniform")
    flat = functools.reduce(operator.iadd, bs, [])
    assert sorted(flat) == list(range(100))


def test_oversample_equal_portions_per_batch():
    _, bs = batches("oversample", batch_size=10)
    for b in bs:
        counts = torch.bincount(LABELS[b], minlength=3)
        assert counts.max() - counts.min() <= 1, counts


def test_undersample_minority_count_without_replacement():
    _, bs = batches("undersample", batch_size=10)
    flat = functools.reduce(operator.iadd, bs, [])
    assert len(set(flat)) == len(flat) == 30
    assert torch.bincount(LABELS[flat], minlength=3).tolist() == [10, 10, 10]


@pytest.mark.parametrize("name", SAMPLERS)
def test_determinism_and_set_epoch(name):
    a, b = build_sampler(name, LABELS, 10, seed=3), build_sampler(name, LABELS, 10, seed=3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(build_sampler(name, LABELS, 10, seed=4)) != first


@pytest.mark.parametrize("name", SAMPLERS)
def test_ddp_shards_disjoint_and_cover_the_global_batch(name):
    whole = list(build_sampler(name, LABELS, 10, seed=1))
    shards = [list(build_sampler(name, LABELS, 10, seed=1, num_replicas=2, rank=r)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(whole)
    for g, s0, s1 in zip(whole, *shards):
        assert sorted(s0 + s1) == sorted(g)
        if name != "oversample":  # oversampling draws with replacement; the positions are still disjoint
            assert not set(s0) & set(s1)
        assert len(s0) == len(s1) == 5


def test_errors():
    with pytest.raises(ValueError, match="unknown sampler 'smote'"):
        build_sampler("smote", LABELS, 10)
    with pytest.raises(ValueError, match=r"rank must lie in \[0, 2\), got 2"):
        build_sampler("uniform", LABELS, 10, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        build_sampler("uniform", LABELS, 0)


@pytest.mark.parametrize("name", SAMPLERS)
def test_epoch_batches_tensor_matches_iteration(name):
    s = build_sampler(name, LABELS, 10, seed=2, num_replicas=2, rank=1)
    s.set_epoch(3)
    t = s.epoch_batches()
    assert t.shape == (len(s), 5) and t.dtype == torch.long
    assert t.tolist() == list(s)
