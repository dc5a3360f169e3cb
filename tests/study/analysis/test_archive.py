"""The study archive: every run's predictions and logits in one file, read back as the report's outputs."""

import json

import numpy as np
import pandas as pd
import pytest

from imbal.errors import DataError, MissingFileError
from imbal.study.analysis.archive import FORMAT, load_archive, write_archive
from imbal.study.analysis.decision import decide
from imbal.study.analysis.outputs import SplitOutputs, StudyOutputs
from imbal.study.analysis.plan import Plan
from imbal.study.report.collect import read_outputs
from imbal.study.report.data import DatasetReport
from tests.study.report import fakes


def as_dict(datasets):
    return {d.key: d.outputs for d in datasets}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Two data sets: the planted study, and its runs in reverse (unsorted) order under another name."""
    data = fakes.fake_report(tmp_path_factory.mktemp("study"))
    rows = data.runs.iloc[::-1].reset_index(drop=True)
    other = DatasetReport("fake (reversed)", data.facts, rows, read_outputs(rows, data.facts))
    return [data, other]


def test_round_trip_keeps_predictions_exactly_and_logits_to_float16(datasets, tmp_path):
    path = write_archive(as_dict(datasets), tmp_path / "outputs.npz")
    assert path == tmp_path / "outputs.npz" and path.is_file()
    loaded = load_archive(path)
    assert list(loaded) == [d.key for d in datasets]
    for data in datasets:
        got, want = loaded[data.key], data.outputs
        assert got.runs == want.runs  # the run order of each data set, not a sorted one
        assert (got.num_classes, got.minority, got.class_names) == (3, 2, fakes.CLASS_NAMES)
        assert got.baseline == fakes.BASELINE
        for split in ("val", "test"):
            g, w = got.split(split), want.split(split)
            np.testing.assert_array_equal(g.labels, w.labels)
            np.testing.assert_array_equal(g.preds, w.preds)
            assert g.labels.dtype == g.preds.dtype == np.int64
            assert g.logits.dtype == np.float16 and g.logits.shape == w.logits.shape
            # float16 keeps 11 significant bits: a relative error of at most 2**-11
            np.testing.assert_allclose(g.logits.astype(np.float64), w.logits, rtol=2**-11, atol=1e-7)
            assert not np.array_equal(g.logits, w.logits)  # it was rounded, not kept as float32


def test_the_reversed_data_set_is_the_same_runs_in_the_other_order(datasets, tmp_path):
    loaded = load_archive(write_archive(as_dict(datasets), tmp_path / "a.npz"))
    a, b = loaded["fake"], loaded["fake (reversed)"]
    assert b.runs == a.runs[::-1]
    np.testing.assert_array_equal(b.test.preds, a.test.preds[::-1])


def test_every_verdict_can_be_made_again_from_the_file(datasets, tmp_path):
    data = datasets[0]
    loaded = load_archive(write_archive(as_dict([data]), tmp_path / "a.npz"))["fake"]
    plan = Plan()
    want, got = decide(data.outputs, plan), decide(loaded, plan)
    assert got.recommendation == want.recommendation == fakes.BETTER
    assert got.confirmation.verdict == want.confirmation.verdict
    cols = ["sampler", "loss", "metric", "difference", "p_value", "verdict"]
    pd.testing.assert_frame_equal(got.table[cols], want.table[cols])


def test_a_baseline_other_than_the_default_is_given_to_the_outputs(datasets, tmp_path):
    loaded = load_archive(write_archive(as_dict(datasets[:1]), tmp_path / "a.npz"), baseline=fakes.SAME)
    assert loaded["fake"].baseline == fakes.SAME
    assert loaded["fake"].grid()[0][0] == fakes.SAME


def _rewrite_meta(path, change):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    change(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


@pytest.mark.parametrize("fmt", [FORMAT + 1, 0, None])
def test_an_archive_of_another_format_is_refused(datasets, tmp_path, fmt):
    path = write_archive(as_dict(datasets[:1]), tmp_path / "a.npz")
    _rewrite_meta(path, lambda meta: meta.update(format=fmt))
    with pytest.raises(DataError, match=rf"archive format {fmt!r}, expected {FORMAT}$"):
        load_archive(path)


def test_a_missing_archive_is_one_line(tmp_path):
    with pytest.raises(MissingFileError, match="no archive at"):
        load_archive(tmp_path / "none.npz")


def _without_logits(data: DatasetReport) -> DatasetReport:
    out = data.outputs
    parts = [SplitOutputs(s.labels, s.preds) for s in (out.val, out.test)]
    outputs = StudyOutputs(out.runs, *parts, out.num_classes, out.minority, out.baseline, out.class_names)
    return DatasetReport(data.key, data.facts, data.runs, outputs)


def test_outputs_without_logits_round_trip(datasets, tmp_path):
    data = _without_logits(datasets[0])
    loaded = load_archive(write_archive(as_dict([data]), tmp_path / "a.npz"))["fake"]
    assert loaded.test.logits is None
    np.testing.assert_array_equal(loaded.test.preds, data.outputs.test.preds)


def test_a_cross_validated_study_keeps_its_folds(tmp_path):
    import numpy as np

    from imbal.study.analysis.archive import load_archive, write_archive
    from imbal.study.simulation import studies as sim

    truth = sim.Truth(np.zeros(3), sim.RETINA, 2, configs=list(sim.CONFIGS[:3]))
    study = sim.draw_folds(truth, np.random.default_rng(0), folds=4)
    back = load_archive(write_archive({"cv": study}, tmp_path / "a.npz"))["cv"]
    assert back.folds.k == 4 and np.array_equal(back.folds.ids, study.folds.ids)
    assert np.array_equal(back.test.preds, study.test.preds)
