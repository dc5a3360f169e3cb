import numpy as np
import pytest
from sklearn.metrics import silhouette_samples

from imbal.study.report.sections.features import class_tightness


def test_tight_class_scores_higher_than_a_spread_one():
    rng = np.random.default_rng(0)
    tight = rng.normal(0, 0.1, (30, 4)) + 3
    spread = rng.normal(0, 2.0, (30, 4))
    x = np.vstack([tight, spread])
    y = np.array([0] * 30 + [1] * 30)
    t = class_tightness(x, y, 2, k=5)
    assert t.loc[0, "silhouette"] > t.loc[1, "silhouette"]
    assert t.loc[0, "knn_purity"] == pytest.approx(1.0)
    # against sklearn on the standardised features
    z = (x - x.mean(0)) / x.std(0)
    assert t.loc[1, "silhouette"] == pytest.approx(silhouette_samples(z, y)[y == 1].mean())


def test_singleton_class_is_nan():
    x = np.random.default_rng(1).normal(size=(10, 3))
    y = np.array([0] * 9 + [1])
    t = class_tightness(x, y, 3, k=3)
    assert np.isnan(t.loc[1, "silhouette"]) and t.loc[2, "n"] == 0
