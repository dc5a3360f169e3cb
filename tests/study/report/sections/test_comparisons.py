"""Every configuration against the baseline: a row per configuration and compared metric, the decision's verdicts."""

import pandas as pd
import pytest

from imbal.metrics import METRICS
from imbal.study.analysis.plan import Plan
from imbal.study.report.sections.comparisons import comparisons_section
from imbal.study.report.sections.findings import qualify
from imbal.study.report.tables import COMPARED
from tests.study.report import fakes

HEADER = [
    "configuration",
    "metric",
    "role",
    "difference",
    "95% CI",
    "p",
    "p adjusted",
    "verdict",
    "non-inferiority",
    "paired over",
    "seeds needed",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return fakes.fake_report(tmp_path_factory.mktemp("study"))


def test_a_row_per_configuration_and_compared_metric_with_the_decisions_verdicts(data, tmp_path):
    s = fakes.decided(tmp_path, data)
    blocks = comparisons_section(s)
    assert blocks[0].text == "Every configuration against the baseline (uniform / ce), on test"
    table = blocks[-1]
    assert table.header == HEADER
    cmp = s.decision.table
    assert len(table.rows) == 2 * len(COMPARED) == len(cmp)  # 2 configurations besides the baseline
    rows = {(r[0], r[1]): r for r in table.rows}
    for config in (fakes.BETTER, fakes.SAME):
        for metric in COMPARED:
            row = rows[(f"{config[0]} / {config[1]}", METRICS[metric].label)]
            want = s.decision.row(metric, config)
            assert row[2] == want.role and row[3] == f"{want.difference:+.3f}"
            assert row[4] == f"[{want.ci_low:+.3f}, {want.ci_high:+.3f}]"
            assert row[7] == str(want.verdict) and row[9] == "3 seeds"
            assert row[8] == (want.non_inferiority or "-")
    # the planted configuration: confirmed better on the primary, non-inferior on the secondaries
    primary = rows[("oversample / ce+f1", "Balanced accuracy")]
    assert (primary[2], primary[7]) == ("confirmatory", "better")
    assert primary[6] == "-"  # the confirmation is in no family: no adjusted p
    assert rows[("oversample / ce+f1", "Macro F1")][8] == "non-inferior"
    # its difference is the difference of the runs' means
    base, better = (data.runs_of(c).macro_f1.mean() for c in (fakes.BASELINE, fakes.BETTER))
    assert rows[("oversample / ce+f1", "Macro F1")][3] == f"{better - base:+.3f}"


def test_the_table_is_saved_as_the_decisions_rows(data, tmp_path):
    s = fakes.decided(tmp_path, data)
    comparisons_section(s)
    saved = pd.read_csv(tmp_path / "tables" / "fake_vs_baseline.csv")
    assert list(saved.columns) == list(s.decision.table.columns)
    assert list(saved.verdict) == [str(v) for v in s.decision.table.verdict]
    assert saved.difference.to_numpy() == pytest.approx(s.decision.table.difference.to_numpy())


def test_the_text_names_the_plans_margins_and_correction(data, tmp_path):
    plan = Plan(margin=0.03, harm_margin=0.04, correction="bh")
    text = comparisons_section(fakes.decided(tmp_path, data, plan))[1].text
    assert "±0.03" in text and "harm margin 0.04" in text
    assert "corrected by Benjamini-Hochberg (false discovery rate 5%)" in text
    assert text.count("Balanced accuracy (primary)") == 1


def test_one_seed_rows_say_what_they_rest_on(tmp_path):
    data = fakes.fake_report(tmp_path / "study", seeds=(0,))
    s = fakes.decided(tmp_path, data)
    rows = comparisons_section(s)[-1].rows
    n = sum(fakes.TEST_COUNTS)
    assert {r[9] for r in rows} == {f"1 seed, n = {n}"}
    for row, want in zip(rows, s.decision.table.itertuples()):
        assert row[7] == qualify(want.verdict, True)
    assert rows[0][7] == "not tested"  # one seed: the confirmation gives no verdict


def test_without_a_decision_there_is_nothing_paired(data, tmp_path):
    blocks = comparisons_section(fakes.section(tmp_path, data))
    assert [b.kind for b in blocks] == ["h3", "p"]
    assert blocks[1].text == "No configuration shares the seeds of uniform / ce, so no paired comparison."
    assert not (tmp_path / "tables").exists()
