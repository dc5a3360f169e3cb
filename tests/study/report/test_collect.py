"""The report's reader: impossible or missing metric values, runs of other settings, unfinished cells."""

import json
import math
import re
import shutil

import pytest

from imbal.cli.main import main
from imbal.engine.config import load_config
from imbal.engine.trainer import train
from imbal.errors import RunFolderError
from imbal.study.report.build import make_report
from imbal.study.report.collect import collect_runs, unfinished_runs

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 200, "size": 12, "class_ratios": [0.7, 0.3]}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One real finished run; the tests copy it into study cells and edit what they test."""
    out = tmp_path_factory.mktemp("template") / "run"
    return train(load_config(None, dict(dataset=SYN, widen_factor=0.125, epochs=1, out=str(out), quiet=True)))


def cell(root, loss="ce", seed=0, sampler="uniform"):
    return root / "runs" / "syn" / sampler / loss / f"seed{seed}"


def add(template, root, loss="ce", seed=0, **config):
    run = cell(root, loss, seed)
    shutil.copytree(template, run)
    m = json.loads((run / "metrics.json").read_text())
    m["config"].update(loss=loss, seed=seed, **config)
    (run / "metrics.json").write_text(json.dumps(m))
    return run


def edit(run, change):
    m = json.loads((run / "metrics.json").read_text())
    change(m)
    (run / "metrics.json").write_text(json.dumps(m))


@pytest.mark.parametrize(
    "change, key, problem",
    [
        (
            lambda m: m["test"].update(balanced_accuracy=1.5),
            "test.balanced_accuracy",
            r"is 1.5, outside its range \[0, 1\]",
        ),
        (lambda m: m["test"].update(mcc=-1.2), "test.mcc", r"is -1.2, outside its range \[-1, 1\]"),
        (lambda m: m["test"].update(macro_f1=math.nan), "test.macro_f1", "must be finite, got nan"),
        (lambda m: m["test"].update(macro_f1=None), "test.macro_f1", "must be a number, got None"),
        (lambda m: m["test"].update(accuracy="0.9"), "test.accuracy", "must be a number, got '0.9'"),
        (lambda m: m["test"].pop("minority_f1"), "test.minority_f1", "is missing"),
        (lambda m: m["config"].update(seed=None), "config.seed", "must be an integer >= 0, got None"),
        (
            lambda m: m["test"]["confusion_matrix"][0].__setitem__(0, 999),
            "test.confusion_matrix",
            r"counts \d+ samples, dataset.n.test says \d+",
        ),
        (lambda m: m["test"].update(auroc=None), "test.auroc", "must be a number, got None"),
    ],
)
def test_an_impossible_or_missing_value_is_one_line(template, tmp_path, capsys, change, key, problem):
    root = tmp_path / "study"
    add(template, root, "ce")
    bad = add(template, root, "ce+mcc")
    edit(bad, change)
    with pytest.raises(RunFolderError, match=rf"{re.escape(str(bad / 'metrics.json'))}: {key} {problem}"):
        collect_runs(root)
    assert main(["report", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imbal: error: ") and err.count("\n") == 1 and key in err


def test_runs_trained_with_other_settings_are_never_pooled(template, tmp_path):
    root = tmp_path / "study"
    for seed in (0, 1):
        add(template, root, "ce", seed, epochs=3, threads=1)
        add(template, root, "ce+mcc", seed, epochs=4, threads=2)
    add(template, root, "ce", 2, epochs=4, threads=2)
    runs = collect_runs(root)
    assert sorted(runs.dataset.unique()) == ["syn (trained with epochs 3)", "syn (trained with epochs 4)"]
    assert runs.attrs["split_by_settings"] == ["syn"]
    assert len(runs[runs.dataset == "syn (trained with epochs 4)"]) == 3
    assert sorted(runs.threads.unique()) == [1, 2]


def test_thread_counts_alone_do_not_split(template, tmp_path):
    root = tmp_path / "study"
    add(template, root, "ce", 0, threads=1)
    add(template, root, "ce+mcc", 0, threads=2)
    runs = collect_runs(root)
    assert runs.dataset.unique().tolist() == ["syn"] and sorted(runs.threads) == [1, 2]


def test_the_report_lists_unfinished_and_failed_cells_and_splits(template, tmp_path):
    root = tmp_path / "study"
    for seed in (0, 1):
        add(template, root, "ce", seed)
        add(template, root, "ce+mcc", seed, epochs=2)
    killed = add(template, root, "focal", 0)
    (killed / "metrics.json").unlink()  # killed after its first checkpoint
    failed = cell(root, "mcc", 0)
    failed.mkdir(parents=True)
    (failed / "error.txt").write_text("DataError: bad\n")
    for seed in (0, 1):  # something to compare in the epochs-1 section
        add(template, root, "ce+0*f1", seed)
    assert unfinished_runs(root) == [str(killed)]
    text = make_report(root).markdown.read_text()
    rel = killed.relative_to(root).as_posix()
    assert f"1 run(s) started but did not finish (killed, or still training) and are left out: {rel}" in text
    assert (
        f"1 run(s) failed (see their error.txt) and are left out: {failed.relative_to(root).as_posix()}"
        in text
    )
    assert "No findings for syn (trained with epochs 2): the baseline uniform / ce has no runs" in text
    assert "Runs of syn were trained with different settings" in text
    assert "## syn (trained with epochs 1)" in text and "## syn (trained with epochs 2)" in text


def test_metrics_added_after_a_run_was_trained_read_as_missing(template, tmp_path):
    from imbal.metrics import METRICS

    optional = [k for k, m in METRICS.items() if m.optional]
    assert set(optional) == {"qwk", "ece", "brier"}
    root = tmp_path / "study"
    add(template, root, "ce")
    old = add(template, root, "ce+mcc")
    edit(old, lambda m: [m["test"].pop(k, None) for k in optional])  # a run from before ECE existed
    runs = collect_runs(root).set_index("loss")
    assert runs.loc["ce+mcc", ["ece", "brier"]].isna().all() and runs.loc["ce", "ece"] >= 0
    # a range check still applies when the value is there
    edit(old, lambda m: m["test"].update(ece=1.5))
    with pytest.raises(RunFolderError, match=r"test.ece is 1.5, outside its range \[0, 1\]"):
        collect_runs(root)
