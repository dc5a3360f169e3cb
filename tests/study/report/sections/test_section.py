"""What every section builder takes: a data set, the plan, the decision, and where its files go."""

import pandas as pd
import pytest

from imbal.study.analysis.plan import Plan
from imbal.study.report.data import DatasetReport
from imbal.study.report.sections.section import Section, config_name
from tests.study.report import fakes


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return fakes.fake_report(tmp_path_factory.mktemp("study"))


def test_config_name():
    assert config_name(("oversample", "ce+mcc")) == "oversample / ce+mcc"


def test_a_section_reads_its_data_set(data, tmp_path):
    s = fakes.section(tmp_path, data)
    assert s.runs is data.runs and s.facts is data.facts
    assert s.dataset == "fake" and s.key == "fake"
    assert s.comparisons.empty  # no decision: nothing compared
    assert s.seeds == 3 and s.cells_text == "mean ± std over seeds"


def test_comparisons_are_the_decisions_table(data, tmp_path):
    s = fakes.decided(tmp_path, data)
    assert s.comparisons is s.decision.table and len(s.comparisons) == 2 * 4  # 2 configurations x 4 metrics


def test_seeds_is_the_most_any_configuration_has(data, tmp_path):
    runs = data.runs[~((data.runs.loss == "focal") & (data.runs.seed > 0))]  # focal: one seed
    s = Section(DatasetReport("k", data.facts, runs, data.outputs), Plan(), None, tmp_path, tmp_path)
    assert s.seeds == 3
    one = data.runs[data.runs.seed == 1]
    s = Section(DatasetReport("k", data.facts, one, data.outputs), Plan(), None, tmp_path, tmp_path)
    assert s.seeds == 1 and s.cells_text == "one seed per configuration (no spread to show)"


def test_csv_is_named_by_the_data_sets_file_key(data, tmp_path):
    renamed = DatasetReport("fake (epochs 2)", data.facts, data.runs, data.outputs)
    s = Section(renamed, Plan(), None, tmp_path / "deep" / "tables", tmp_path / "figures")
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    s.csv(frame, "thing")
    path = tmp_path / "deep" / "tables" / "fakexxepochsx2x_thing.csv"
    pd.testing.assert_frame_equal(pd.read_csv(path), frame)
    s.csv(frame.set_index("a"), "indexed", index=True)
    assert (tmp_path / "deep" / "tables" / "fakexxepochsx2x_indexed.csv").read_text().startswith("a,b\n1,x")
