"""The paper's tables and their figures: cells are the runs' means, the change heatmap carries the verdicts."""

import math

import numpy as np
import pandas as pd
import pytest

from imbal.metrics import METRICS
from imbal.study.analysis.plan import Plan
from imbal.study.report import figures, tables
from imbal.study.report.sections.metrics import (
    MARKS,
    class_f1_section,
    confusion_section,
    metric_change,
    metric_table,
)
from tests.study.report import fakes
from tests.study.report.fakes import BASELINE, BETTER, SAME

COLUMNS = ["sampler \\ loss", "ce", "ce+f1", "focal"]  # loss order; samplers: uniform, then oversample


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return fakes.fake_report(tmp_path_factory.mktemp("study"))


@pytest.fixture
def drawn(monkeypatch):
    """The figures' inputs, by function name (nothing is drawn)."""
    calls = {}

    def capture(name, path_arg):
        def draw(*args):
            calls[name] = args
            return args[path_arg]

        return draw

    # each figure function's position of its path argument
    for name, path_arg in (("heatmap", 2), ("difference_heatmap", 3), ("class_f1_bars", 3), ("confusion", 3)):
        monkeypatch.setattr(figures, name, capture(name, path_arg))
    return calls


def cell(runs, config, metric):
    v = runs[(runs.sampler == config[0]) & (runs.loss == config[1])][metric]
    return v.mean(), v.std(ddof=1), len(v)


@pytest.mark.parametrize("metric", ["balanced_accuracy", "macro_f1", "mcc", "minority_f1", "auroc"])
def test_metric_table_cells_are_the_runs_means_and_spreads(data, tmp_path, metric):
    blocks = metric_table(fakes.section(tmp_path, data), metric)
    assert blocks[0].text == METRICS[metric].label
    assert blocks[1].text == "Test split, mean ± std over seeds; best cell in bold."
    table = blocks[2]
    assert table.header == COLUMNS
    assert [r[0] for r in table.rows] == ["uniform", "oversample"]
    for i, sampler in enumerate(["uniform", "oversample"]):
        for j, loss in enumerate(COLUMNS[1:], start=1):
            if (sampler, loss) in (BASELINE, BETTER, SAME):
                m, s, n = cell(data.runs, (sampler, loss), metric)
                assert table.rows[i][j] == f"{m:.3f} ± {s:.3f}" and n == 3
            else:
                assert table.rows[i][j] == "-"  # not run
    assert table.bold == {(1, 2)}  # oversample / ce+f1, the planted best on every one of these metrics
    saved = pd.read_csv(tmp_path / "tables" / f"fake_{metric}.csv", header=[0, 1], index_col=0)
    assert saved[("mean", "ce")]["uniform"] == pytest.approx(cell(data.runs, BASELINE, metric)[0])
    assert saved[("n", "focal")]["uniform"] == 3


def test_a_chance_level_is_stated_where_the_metric_has_one(data, tmp_path):
    s = fakes.section(tmp_path, data)
    assert metric_table(s, "balanced_accuracy")[-1].text.startswith(
        "For scale: always predicting the majority"
    )
    assert metric_table(s, "accuracy")[-1].text.startswith("For scale:")
    assert len(metric_table(s, "macro_f1")) == 3


def test_one_seed_cells_are_means_alone(tmp_path):
    data = fakes.fake_report(tmp_path / "study", seeds=(0,))
    blocks = metric_table(fakes.section(tmp_path, data), "macro_f1")
    assert blocks[1].text == "Test split, one seed per configuration (no spread to show); best cell in bold."
    assert blocks[2].rows[0][1] == f"{data.runs_of(BASELINE).macro_f1.iloc[0]:.3f}"


def test_change_is_per_cent_of_the_baseline_and_the_heatmap_marks_the_verdicts(data, tmp_path, drawn):
    s = fakes.decided(tmp_path, data)
    blocks = metric_change(s, "balanced_accuracy")
    assert blocks[0].text == "Relative change of the mean against uniform / ce (Balanced accuracy):"
    base = cell(data.runs, BASELINE, "balanced_accuracy")[0]
    better = cell(data.runs, BETTER, "balanced_accuracy")[0]
    assert blocks[1].rows[0][1] == "+0.0%" and blocks[1].rows[0][2] == "-"
    assert blocks[1].rows[1][2] == f"{(better - base) / base * 100:+.1f}%"
    assert blocks[1].bold == set()  # a change table marks no best cell
    assert (tmp_path / "tables" / "fake_balanced_accuracy_relative.csv").is_file()
    assert (
        blocks[2].kind == "image"
        and blocks[2].path == tmp_path / "figures" / "fake_balanced_accuracy_heatmap.png"
    )
    diff, marks, title, path, limit = drawn["difference_heatmap"]
    assert diff.loc["oversample", "ce+f1"] == pytest.approx(better - base) and diff.loc["uniform", "ce"] == 0
    verdicts = {
        (r.sampler, r.loss): r.verdict
        for r in s.comparisons[s.comparisons.metric == "balanced_accuracy"].itertuples()
    }
    assert verdicts[BETTER] == "better"
    assert marks.loc["uniform", "ce"] == "baseline"
    assert marks.loc["oversample", "ce+f1"] == MARKS[verdicts[BETTER]] == "better"
    assert marks.loc["uniform", "focal"] == MARKS[verdicts[SAME]]
    assert marks.loc["oversample", "ce"] == ""  # not run: no mark
    assert limit == max(0.05, math.ceil(abs(better - base) * 20) / 20) == 0.25
    assert "(primary)" in title and path == blocks[2].path


def test_a_secondary_metrics_heatmap_says_so(data, tmp_path, drawn):
    metric_change(fakes.decided(tmp_path, data), "macro_f1")
    assert "Macro F1 (secondary), change vs uniform / ce" in drawn["difference_heatmap"][2]


def test_one_seed_marks_say_so(tmp_path, drawn):
    data = fakes.fake_report(tmp_path / "study", seeds=(0,))
    metric_change(fakes.decided(tmp_path, data), "balanced_accuracy")
    marks = drawn["difference_heatmap"][1]
    assert marks.loc["oversample", "ce+f1"].endswith(" (1 seed)")


def test_without_a_decision_the_heatmap_shows_the_means_on_the_metrics_range(data, tmp_path, drawn):
    blocks = metric_change(fakes.section(tmp_path, data), "mcc")
    assert [b.kind for b in blocks] == ["p", "table", "image"]
    mean, title, path, low, high = drawn["heatmap"]
    pd.testing.assert_frame_equal(mean, tables.summary(data.runs, "mcc")[0])
    assert (low, high) == (-1.0, 1.0) and title == "fake: MCC (test, mean ± std over seeds)"
    assert path == blocks[2].path == tmp_path / "figures" / "fake_mcc_heatmap.png"
    assert "difference_heatmap" not in drawn


def test_without_the_baseline_there_is_no_relative_change(data, tmp_path, drawn):
    s = fakes.section(tmp_path, data, plan=Plan(baseline=("undersample", "ce")))
    blocks = metric_change(s, "macro_f1")
    assert [b.kind for b in blocks] == ["image"] and "heatmap" in drawn


def test_the_heatmap_is_drawn(data, tmp_path):
    (image,) = [b for b in metric_change(fakes.decided(tmp_path, data), "macro_f1") if b.kind == "image"]
    assert image.path.read_bytes()[:4] == b"\x89PNG"


def test_class_f1_section_is_the_mean_f1_of_each_class(data, tmp_path, drawn):
    blocks = class_f1_section(fakes.section(tmp_path, data))
    assert blocks[0].text == "Class-wise F1 (test, mean ± std over seeds)"
    table = blocks[1]
    assert table.header == [
        "sampler",
        "loss",
        "seeds",
        "normal (n=180)",
        "mild (n=80)",
        "severe (n=40) minority",
    ]
    configs = [BASELINE, SAME, BETTER]
    assert [tuple(r[:2]) for r in table.rows] == configs and all(r[2] == "3" for r in table.rows)
    f1 = np.array([np.mean(data.runs_of(c).f1_per_class.tolist(), axis=0) for c in configs])
    assert [r[3:] for r in table.rows] == [[f"{v:.3f}" for v in row] for row in f1]
    assert table.bold == {(int(f1[:, k].argmax()), k + 3) for k in range(3)}
    assert table.bold >= {(2, 4), (2, 5)}  # the planted configuration is best on the rare classes
    assert blocks[2].path == tmp_path / "figures" / "fake_class_f1.png"
    assert drawn["class_f1_bars"][1] == fakes.CLASS_NAMES
    assert (tmp_path / "tables" / "fake_class_f1.csv").is_file()


def test_confusion_section_sums_the_chosen_alternatives_matrices(data, tmp_path, drawn):
    blocks = confusion_section(fakes.decided(tmp_path, data))
    assert blocks[0].text == "Confusion matrix of the alternative chosen on validation (oversample / ce+f1)"
    cm, names, title, path = drawn["confusion"]
    np.testing.assert_array_equal(cm, np.sum(data.runs_of(BETTER).confusion_matrix.tolist(), axis=0))
    assert cm.sum() == 3 * sum(fakes.TEST_COUNTS) and names == fakes.CLASS_NAMES
    assert title == "fake: oversample / ce+f1 (3 seeds)" and blocks[1].path == path


def test_confusion_section_without_a_decision_shows_the_baseline_or_nothing(data, tmp_path, drawn):
    blocks = confusion_section(fakes.section(tmp_path, data))
    assert blocks[0].text.endswith("(uniform / ce)")
    np.testing.assert_array_equal(
        drawn["confusion"][0], np.sum(data.runs_of(BASELINE).confusion_matrix.tolist(), axis=0)
    )
    assert confusion_section(fakes.section(tmp_path, data, plan=Plan(baseline=("undersample", "ce")))) == []
