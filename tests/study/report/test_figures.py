"""Figures use fixed scales: a small difference never looks like opposite ends of the colour map."""

import matplotlib.axes
import pandas as pd
import pytest

from imbal.study.report import figures


@pytest.fixture
def imshow_calls(monkeypatch):
    calls = []
    real = matplotlib.axes.Axes.imshow

    def spy(self, *a, **k):
        calls.append(k)
        return real(self, *a, **k)

    monkeypatch.setattr(matplotlib.axes.Axes, "imshow", spy)
    return calls


def test_bounded_metric_heatmap_is_on_its_range(tmp_path, imshow_calls):
    mean = pd.DataFrame([[0.836, 0.861]], index=["uniform"], columns=["ce", "ce+mcc"])
    figures.heatmap(mean, "AUROC", tmp_path / "a.png", 0.0, 1.0)
    assert imshow_calls[-1]["vmin"] == 0.0 and imshow_calls[-1]["vmax"] == 1.0
    figures.heatmap(mean, "MCC", tmp_path / "b.png", -1.0, 1.0)
    assert (imshow_calls[-1]["vmin"], imshow_calls[-1]["vmax"]) == (-1.0, 1.0)


def test_difference_heatmap_is_symmetric_with_marks(tmp_path, imshow_calls):
    diff = pd.DataFrame([[0.0, 0.025]], index=["uniform"], columns=["ce", "ce+mcc"])
    marks = pd.DataFrame([["baseline", "n.s."]], index=diff.index, columns=diff.columns)
    path = figures.difference_heatmap(diff, marks, "BA change", tmp_path / "d.png", limit=0.05)
    kw = imshow_calls[-1]
    assert (kw["vmin"], kw["vmax"], kw["cmap"]) == (-0.05, 0.05, "RdBu")
    assert path.stat().st_size > 1000
