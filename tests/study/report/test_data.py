"""The report's data model: a data set's facts, checked to agree over its runs, and its runs by configuration."""

import pandas as pd
import pytest

from imbal.errors import RunFolderError
from imbal.study.report.data import DatasetReport, Facts
from tests.study.report import fakes


def rows(count=3, **change):
    """Rows of one data set as collect_runs gives them (the columns Facts.of reads); ``change``: row 1's values."""
    out = []
    for i in range(count):
        info = fakes.dataset_info()
        row = {
            "dataset_info": info,
            "class_names": info["class_names"],
            "f1_per_class": [0.9, 0.5, 0.3],
            "minority_class": info["minority_class"],
        }
        if i == 1:
            for key, value in change.items():
                if key in row:
                    row[key] = value
                else:
                    row["dataset_info"] = {**info, key: value}
        out.append(row)
    return pd.DataFrame(out)


def test_facts_of_agreeing_rows():
    f = Facts.of(rows(), "fake")
    assert f == Facts(
        "FakeMNIST",
        fakes.SOURCE,
        False,
        fakes.CLASS_NAMES,
        2,
        fakes.TRAIN_COUNTS,
        fakes.TEST_COUNTS,
        {"train": 860, "val": 200, "test": 300},
    )
    assert f.num_classes == 3
    assert f.minority_label == "'severe'"  # quoted, as the report writes it


def test_unnamed_classes_are_their_indices_as_text():
    f = Facts.of(rows().assign(class_names=None), "x")
    assert f.class_names == ["0", "1", "2"] and f.minority_label == "'2'"


def test_runs_without_test_counts_or_sizes_read_as_empty_and_zero():
    frame = rows()
    frame["dataset_info"] = [{"name": "old"} for _ in range(len(frame))]
    f = Facts.of(frame, "old")
    assert (f.name, f.source, f.synthetic) == ("old", "", False)
    assert f.train_counts == f.test_counts == [] and f.sizes == {"train": 0, "val": 0, "test": 0}


@pytest.mark.parametrize(
    "change",
    [
        {"train_counts": [600, 200, 61]},
        {"test_counts": [180, 80, 41]},
        {"n": {"train": 860, "val": 200, "test": 301}},
        {"name": "OtherMNIST"},
        {"synthetic": True},
        {"minority_class": 1},
        {"class_names": ["a", "b", "c"]},
        {"f1_per_class": [0.9, 0.5, 0.3, 0.1]},  # another number of classes
    ],
)
def test_rows_that_disagree_on_a_fact_are_refused(change):
    with pytest.raises(
        RunFolderError, match=r"^the runs of fake \(test set\) disagree on their data's facts"
    ):
        Facts.of(rows(**change), "fake (test set)")


def test_dataset_report_runs_of_file_key_and_settings(tmp_path):
    data = fakes.fake_report(tmp_path, seeds=(0, 1))
    better = data.runs_of(fakes.BETTER)
    assert list(zip(better.sampler, better.loss, better.seed)) == [
        ("oversample", "ce+f1", 0),
        ("oversample", "ce+f1", 1),
    ]
    assert data.runs_of(("undersample", "ce")).empty
    # the rows are those of the outputs, in their order
    assert [((r.sampler, r.loss), r.seed) for r in data.runs.itertuples()] == data.outputs.runs
    assert not data.synthetic
    assert [c["loss"] for c in data.configs_settings()] == list(data.runs.loss)
    renamed = DatasetReport("syn (test set ab12, n=3/4)", data.facts, data.runs, data.outputs)
    assert renamed.file_key == "synxxtestxsetxab12xxnx3x4x"
    assert DatasetReport("a+b_c-1.2", data.facts, data.runs, data.outputs).file_key == "a+b_c-1.2"


def test_synthetic_when_any_run_is():
    frame = pd.DataFrame({"synthetic": [False, True]})
    assert DatasetReport("k", None, frame, None).synthetic  # type: ignore[arg-type]
    assert not DatasetReport("k", None, frame.iloc[:1], None).synthetic  # type: ignore[arg-type]
