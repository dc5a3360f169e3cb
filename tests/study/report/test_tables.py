"""Study tables: the paper's layout, its cells, relative change, class-wise F1 and post hoc."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from imbal.posthoc import posthoc_scores
from imbal.study.report import tables
from imbal.study.report.data import DatasetReport
from tests.study.report import fakes


def runs_frame():
    """Runs of four configurations; one of them with one seed; samplers and losses out of report order."""
    rows = [
        ("oversample", "focal", 0, 0.60),
        ("oversample", "focal", 1, 0.70),
        ("uniform", "ce+mcc", 0, 0.50),
        ("uniform", "ce+mcc", 1, 0.54),
        ("uniform", "ce+mcc", 2, 0.58),
        ("uniform", "ce", 0, 0.40),
        ("uniform", "ce", 1, 0.50),
        ("weights", "ce", 0, 0.80),
    ]
    return pd.DataFrame(rows, columns=["sampler", "loss", "seed", "macro_f1"])


def test_summary_is_mean_std_and_count_in_the_papers_layout():
    mean, std, n = tables.summary(runs_frame(), "macro_f1")
    for frame in (mean, std, n):
        assert list(frame.index) == ["uniform", "weights", "oversample"]  # sampler order of SAMPLERS
        assert list(frame.columns) == ["ce", "ce+mcc", "focal"]  # loss order
    assert mean.loc["uniform", "ce"] == pytest.approx(0.45)
    assert mean.loc["uniform", "ce+mcc"] == pytest.approx(0.54)
    assert std.loc["uniform", "ce+mcc"] == pytest.approx(0.04)  # ddof 1
    assert std.loc["oversample", "focal"] == pytest.approx(np.std([0.6, 0.7], ddof=1))
    assert n.loc["uniform", "ce+mcc"] == 3 and n.loc["weights", "ce"] == 1
    assert math.isnan(std.loc["weights", "ce"])  # one seed: no spread
    assert math.isnan(mean.loc["weights", "focal"]) and math.isnan(n.loc["weights", "focal"])  # not run


def test_best_cell_is_the_highest_mean_and_none_without_any():
    mean = tables.summary(runs_frame(), "macro_f1")[0]
    assert tables.best_cell(mean) == ("weights", "ce")
    assert tables.best_cell(mean * np.nan) is None


@pytest.mark.parametrize(
    "m, s, n, text",
    [
        (0.5, 0.1234, 3, "0.500 ± 0.123"),
        (0.5, 0.0, 2, "0.500 ± 0.000"),
        (0.5, math.nan, 1, "0.500"),  # one seed: the mean alone
        (0.5, 0.1, 1, "0.500"),
        (0.5, math.nan, 3, "0.500"),
        (0.5, 0.1, math.nan, "0.500"),
        (0.5, 0.1, None, "0.500"),
        (math.nan, 0.1, 3, "-"),  # not run
        (None, None, None, "-"),
        (np.float64(0.25), np.float64(0.05), np.float64(4.0), "0.250 ± 0.050"),
    ],
)
def test_format_cell(m, s, n, text):
    assert tables.format_cell(m, s, n) == text


def test_relative_change_is_per_cent_of_the_baseline():
    mean = tables.summary(runs_frame(), "macro_f1")[0]
    rel = tables.relative_change(mean, ("uniform", "ce"))
    assert rel.loc["uniform", "ce"] == 0
    assert rel.loc["weights", "ce"] == pytest.approx((0.80 - 0.45) / 0.45 * 100)
    assert rel.loc["uniform", "ce+mcc"] == pytest.approx(20.0)
    assert math.isnan(rel.loc["weights", "focal"])


def test_relative_change_against_a_negative_baseline_keeps_the_sign_of_the_change():
    mean = pd.DataFrame({"ce": [-0.2], "focal": [0.1]}, index=["uniform"])
    assert tables.relative_change(mean, ("uniform", "ce")).loc["uniform", "focal"] == pytest.approx(150.0)


@pytest.mark.parametrize(
    "base, given",
    [
        (tables.RELATIVE_FLOOR, True),  # at the floor: still a per cent
        (tables.RELATIVE_FLOOR - 1e-9, False),
        (-tables.RELATIVE_FLOOR + 1e-9, False),
        (0.0, False),
        (math.nan, False),
    ],
)
def test_relative_change_needs_a_baseline_of_at_least_the_floor(base, given):
    mean = pd.DataFrame({"ce": [base], "focal": [0.3]}, index=["uniform"])
    assert (tables.relative_change(mean, ("uniform", "ce")) is not None) is given


def test_relative_change_without_the_baseline_is_none():
    mean = tables.summary(runs_frame(), "macro_f1")[0]
    assert tables.relative_change(mean, ("undersample", "ce")) is None
    assert tables.relative_change(mean, ("uniform", "la-ce")) is None


def test_configurations_in_report_order_and_only_those_run():
    assert tables.configurations(runs_frame()) == [
        ("uniform", "ce"),
        ("uniform", "ce+mcc"),
        ("weights", "ce"),
        ("oversample", "focal"),
    ]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return fakes.fake_report(tmp_path_factory.mktemp("study"), select_metric="macro_f1")


def test_class_f1_table_is_the_mean_over_seeds(data):
    t = tables.class_f1_table(data)
    assert list(t.columns) == ["sampler", "loss", "seeds", *fakes.CLASS_NAMES]
    assert list(zip(t.sampler, t.loss)) == [fakes.BASELINE, fakes.SAME, fakes.BETTER]
    assert list(t.seeds) == [3, 3, 3]
    for row in t.itertuples():
        f1 = np.array(data.runs_of((row.sampler, row.loss)).f1_per_class.tolist())
        np.testing.assert_allclose(t.loc[row.Index, fakes.CLASS_NAMES].to_numpy(float), f1.mean(0))
    # the planted configuration is better on the rare classes
    better, base = (t[t.loss == loss].iloc[0] for loss in ("ce+f1", "ce"))
    assert better.severe > base.severe + 0.2


def test_posthoc_table_is_posthoc_scores_of_each_runs_stored_logits(data):
    t = tables.posthoc_table(data)
    assert len(t) == len(data.runs)
    assert list(zip(t.sampler, t.loss, t.seed)) == list(
        zip(data.runs.sampler, data.runs.loss, data.runs.seed)
    )
    assert set(t.tau_metric) == {"macro_f1"}  # the runs' selection metric
    assert (t.tau > 0).any() and (t.balanced_accuracy_posthoc != t.balanced_accuracy).any()  # not all tau 0
    for i in (0, 3, 7):
        run = data.runs.run_dir[i]
        val, test = (np.load(f"{run}/outputs_{split}.npz") for split in ("val", "test"))
        want = posthoc_scores(
            torch.from_numpy(val["logits"]),
            torch.from_numpy(val["labels"]),
            torch.from_numpy(test["logits"]),
            torch.from_numpy(test["labels"]),
            torch.tensor(fakes.TRAIN_COUNTS, dtype=torch.float64),
            "macro_f1",
        )
        assert t.tau[i] == want["tau"]
        for k in tables.COMPARED:
            assert t[k][i] == pytest.approx(want["test"][k])
            assert t[f"{k}_posthoc"][i] == pytest.approx(want["test_adjusted"][k])
        # the plain test scores are the run's own metrics
        assert t.balanced_accuracy[i] == pytest.approx(data.runs.balanced_accuracy[i])


def test_posthoc_tau_falls_back_for_a_score_based_selection_metric(tmp_path):
    data = fakes.fake_report(tmp_path, seeds=(0,), select_metric="auroc")
    assert set(tables.posthoc_table(data).tau_metric) == {"balanced_accuracy"}


def test_posthoc_table_without_logits_says_why(data):
    out = data.outputs
    no_logits = type(out.val)(out.val.labels, out.val.preds)
    outputs = type(out)(out.runs, no_logits, out.test, out.num_classes, out.minority)
    with pytest.raises(ValueError, match=r"^fake holds no logits"):
        tables.posthoc_table(DatasetReport("fake", data.facts, data.runs, outputs))
