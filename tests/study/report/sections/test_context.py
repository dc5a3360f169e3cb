"""What was run, the free post-hoc baseline, and the chance note: each against the runs it was given."""

import pandas as pd
import pytest

from imbal.engine.config import REPORTED_KEYS
from imbal.study.report import tables
from imbal.study.report.data import DatasetReport, Facts
from imbal.study.report.sections.context import chance_note, context_blocks, posthoc_blocks, seeds_text
from tests.study.report import fakes


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return fakes.fake_report(tmp_path_factory.mktemp("study"))


def settings(blocks):
    (table,) = [b for b in blocks if b.kind == "table"]
    assert table.header == ["setting", "value"]
    return dict(table.rows)


def test_what_was_run_lists_data_sizes_classes_and_grid(data, tmp_path):
    blocks = context_blocks(fakes.section(tmp_path, data))
    assert blocks[0].kind == "h3" and blocks[0].text == "What was run"
    rows = settings(blocks)
    assert rows["data"] == "FakeMNIST (fake.npz)"  # the file's name, never the machine's path
    assert "/data/private" not in str(blocks)
    assert rows["split sizes"] == "train 860, validation 200, test 300"
    assert rows["training classes"] == "normal 600, mild 200, severe 60 (minority); imbalance 10.0:1"
    assert rows["configurations"] == "3: uniform / ce, uniform / focal, oversample / ce+f1"
    assert rows["seeds"] == "3 seeds (0, 1, 2)"


def test_every_reported_key_and_the_compared_losses_settings_are_listed(data, tmp_path):
    rows = settings(context_blocks(fakes.section(tmp_path, data)))
    config = data.runs.config[0]
    for key in REPORTED_KEYS:
        assert rows[key] == str(config[key]), key
    assert rows["focal_gamma"] == "2.0"  # read by focal, one of the compared losses
    assert "la_tau" not in rows  # no compared loss reads it
    assert "out" not in rows and "quiet" not in rows  # presentation, not a setting of the numbers
    assert list(rows)[3 : 3 + len(REPORTED_KEYS)] == list(REPORTED_KEYS)  # after data, sizes and classes


def test_a_setting_that_varies_says_so(tmp_path):
    root = tmp_path / "study"
    for seed, threads in ((0, 1), (1, 2)):
        for config in (fakes.BASELINE, fakes.BETTER):
            fakes.write_run(root, config, seed, fakes.BASE_RECALL, threads=threads)
    data = fakes.fake_report(root, {})  # the runs above only
    rows = settings(context_blocks(fakes.section(tmp_path, data)))
    assert rows["threads"] == "varies: 1, 2" and rows["epochs"] == "100"


def test_synthetic_data_is_named_so(data, tmp_path):
    facts = Facts(**{**data.facts.__dict__, "synthetic": True})
    s = fakes.section(tmp_path, DatasetReport("fake", facts, data.runs, data.outputs))
    assert settings(context_blocks(s))["data"] == "FakeMNIST (SYNTHETIC)"


def test_posthoc_blocks_are_the_posthoc_tables_means_per_configuration(data, tmp_path):
    s = fakes.section(tmp_path, data)
    blocks = posthoc_blocks(s)
    assert [b.kind for b in blocks] == ["h3", "p", "table"]
    post = tables.posthoc_table(data)
    saved = pd.read_csv(tmp_path / "tables" / "fake_posthoc.csv")
    assert list(saved.columns) == list(post.columns) and len(saved) == len(post)
    table = blocks[2]
    assert [r[0] for r in table.rows] == ["uniform / ce", "uniform / focal", "oversample / ce+f1"]
    for row, config in zip(table.rows, tables.configurations(post)):
        grp = post[(post.sampler == config[0]) & (post.loss == config[1])]
        cols = ["balanced_accuracy", "balanced_accuracy_posthoc", "macro_f1", "macro_f1_posthoc"]
        cols += ["minority_f1", "minority_f1_posthoc"]
        assert row[1:7] == [f"{grp[c].mean():.3f}" for c in cols]
        assert row[7] == f"{grp.tau.mean():.2f}"
    base = post[(post.sampler == "uniform") & (post.loss == "ce")]
    assert blocks[1].text.endswith(
        f"For uniform / ce it moves balanced accuracy from {base.balanced_accuracy.mean():.3f} to "
        f"{base.balanced_accuracy_posthoc.mean():.3f} (mean tau {base.tau.mean():.2f})."
    )


def test_posthoc_without_the_baseline_says_nothing_of_it(data, tmp_path):
    runs = data.runs[data.runs.loss != "ce"].reset_index(drop=True)
    rows = [i for i, (c, _) in enumerate(data.outputs.runs) if c != fakes.BASELINE]
    d = DatasetReport("fake", data.facts, runs, data.outputs.select(rows))
    text = posthoc_blocks(fakes.section(tmp_path, d))[1].text
    assert text.endswith("a loss is worth its price only if it beats this column.")


def test_chance_note_is_the_majority_class_and_uniform_chance(data):
    assert chance_note(data.facts) == (
        "For scale: always predicting the majority class scores accuracy 0.600 and balanced accuracy 0.333 "
        "(chance) on this test set."
    )
    assert chance_note(Facts(**{**data.facts.__dict__, "test_counts": []})) == ""


def test_seeds_text():
    assert seeds_text(pd.DataFrame({"seed": [2, 0, 2, 1]})) == "3 seeds (0, 1, 2)"
    assert seeds_text(pd.DataFrame({"seed": [4, 4]})) == "1 seed (4)"
