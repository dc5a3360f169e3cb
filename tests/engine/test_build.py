"""Builders: the binary soft F1's positive class defaults to the training minority; checks at build time."""

import pytest

from imbal.data import synthetic
from imbal.engine.build import loss_for
from imbal.engine.config import ConfigError, load_config
from imbal.losses import SoftF1Loss


def f1_term(loss):
    return next(t for t in loss.terms if isinstance(t, SoftF1Loss))


@pytest.mark.parametrize(("ratios", "minority"), [((0.2, 0.8), 0), ((0.8, 0.2), 1)])
def test_positive_class_defaults_to_the_training_minority(ratios, minority):
    data = synthetic(n=200, size=8, class_ratios=ratios).train
    cfg = load_config(None, {"loss": "ce+f1", "f1_average": "positive"})
    term = f1_term(loss_for(cfg, data))
    assert term.average == "positive" and term.positive_class == minority == data.minority_class
    cfg = load_config(None, {"loss": "ce+f1", "f1_average": "positive", "positive_class": "1"})
    assert f1_term(loss_for(cfg, data)).positive_class == 1


def test_loss_settings_reach_the_terms():
    data = synthetic(n=200, size=8, class_ratios=(0.5, 0.3, 0.2)).train
    cfg = load_config(
        None, {"loss": "focal+la-ce+mcc", "focal_gamma": "1.5", "la_tau": "0.5", "metric_memory": "3"}
    )
    focal, la, mcc = loss_for(cfg, data).terms
    assert focal.gamma == 1.5 and la.tau == 0.5 and mcc.memory == 3 and mcc.memory_counts.shape == (3, 4, 3)


def test_binary_only_settings_refused_on_multiclass_data():
    data = synthetic(n=200, size=8, class_ratios=(0.5, 0.3, 0.2)).train
    cfg = load_config(None, {"loss": "ce+f1", "f1_average": "positive"})
    with pytest.raises(
        ConfigError, match="f1_average 'positive' needs a binary data set, synthetic2d has 3 classes"
    ):
        loss_for(cfg, data)
    data2 = synthetic(n=200, size=8, class_ratios=(0.7, 0.3)).train
    cfg = load_config(None, {"loss": "ce+f1", "f1_average": "positive", "positive_class": "2"})
    with pytest.raises(ConfigError, match=r"positive_class=2 is not a class of synthetic2d \(classes 0..1\)"):
        loss_for(cfg, data2)
