"""The loss-term table is the one home of loss names: adding a term is one table entry + its function."""

import pytest
import torch

import imbal.losses.terms as terms
from imbal.engine.config import ConfigError, load_config
from imbal.losses import LOSS_TERMS, build_loss, loss_sort_key, parse_loss_name
from imbal.losses.terms import LossTerm


def toy_loss(logits, target):
    return (logits.softmax(-1) ** 2).sum(-1)  # a per-sample toy term


class Toy(torch.nn.Module):
    def forward(self, logits, target, reduction="mean"):
        loss = toy_loss(logits, target)
        return loss if reduction == "none" else loss.mean()


def test_a_new_term_is_one_table_entry(monkeypatch):
    monkeypatch.setitem(terms.LOSS_TERMS, "toy", LossTerm("toy", lambda s: Toy(), True, "a toy"))
    logits, y = torch.randn(8, 3), torch.randint(0, 3, (8,))
    loss = build_loss("ce+0.5*toy")
    expected = torch.nn.functional.cross_entropy(logits, y) + 0.5 * toy_loss(logits, y).mean()
    assert torch.allclose(loss(logits, y), expected)
    # config check, sampler rule (per-sample) and report order all follow the table
    assert load_config(None, {"loss": "toy", "sampler": "weights"}).loss == "toy"
    assert sorted(["toy", "ce", "mcc", "ce+toy"], key=loss_sort_key) == ["ce", "ce+toy", "mcc", "toy"]


def test_unknown_term_never_falls_into_another_branch():
    with pytest.raises(ValueError, match="unknown loss term 'dice' in 'ce\\+dice'"):
        parse_loss_name("ce+dice")
    with pytest.raises(ConfigError, match="unknown loss term 'dice'"):
        load_config(None, {"loss": "dice"})


def test_paper_column_order():
    names = ["mcc", "focal", "la-ce", "ce+mcc", "f1", "ce", "ce+f1"]
    assert sorted(names, key=loss_sort_key) == ["ce", "ce+f1", "ce+mcc", "f1", "focal", "mcc", "la-ce"]


def test_per_sample_comes_from_the_table():
    loss = build_loss("ce+mcc+focal")
    assert (
        loss.per_sample == [LOSS_TERMS[n].per_sample for n in ("ce", "mcc", "focal")] == [True, False, True]
    )
