"""`imbal card`: every number of a model card is the run's stored one (metrics.json) or the study's own
verdict, and a card names no machine path."""

import json
import re

import numpy as np
import pytest
from scipy import stats as sps

from imbal.cli.main import main
from imbal.engine import run_dir as rd
from imbal.export.card import model_card, rarest_interval
from imbal.metrics import METRICS
from imbal.study.analysis.decision import decide
from imbal.study.analysis.plan import resolve_plan
from imbal.study.report.collect import collect_study
from tests.study.report.fakes import BASELINE, BETTER, CLASS_NAMES, PLANTED, SAME, SOURCE, write_run


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("card") / "mystudy"
    for config, recall in PLANTED.items():
        for seed in (0, 1, 2):
            write_run(root, config, seed, recall)
    return root


def cell(study, config, seed=0):
    return rd.cell_dir(study, "fake", config[0], config[1], seed)


def table_value(card: str, label: str) -> str:
    (value,) = re.findall(rf"^\| {re.escape(label)} \| ([^|]+) \|$", card, flags=re.M)
    return value.strip()


def test_card_numbers_are_the_runs_metrics(study):
    run = cell(study, BETTER)
    card = model_card(run)
    m = json.loads((run / rd.METRICS_FILE).read_text())
    for key in ("balanced_accuracy", "accuracy", "macro_f1", "mcc", "minority_f1", "auroc", "ece", "brier"):
        assert table_value(card, METRICS[key].label) == f"{m['test'][key]:.3f}", key
    for k, name in enumerate(CLASS_NAMES):
        row = re.search(rf"^\| {name} \| (\d\.\d+) \| (\d\.\d+) \| (\d+) \|$", card, flags=re.M)
        assert row.groups() == (
            f"{m['test']['f1_per_class'][k]:.3f}",
            f"{m['test']['recall_per_class'][k]:.3f}",
            str(m["test"]["support"][k]),
        )
    assert "| severe | 60 | 30 | 40 |" in card  # train / validation / test counts of the rarest class
    assert SOURCE not in card and str(study.parent) not in card and "`fake.npz`" in card


def test_card_gives_the_studys_verdict_for_this_configuration(study, tmp_path):
    plan, _ = resolve_plan(study)
    (data,) = collect_study(study).datasets
    d = decide(data.outputs, plan, planning=False)
    assert d.recommendation == BETTER
    card = model_card(cell(study, BETTER, 1))
    assert "seed 1 of **oversample / ce+f1** in the study `mystudy`" in card
    assert "The study's recommendation: **oversample / ce+f1** (this configuration): confirmed better" in card
    row = d.row(plan.primary, BETTER)
    assert f"{row.difference:+.3f} [{row.ci_low:+.3f}, {row.ci_high:+.3f}]; verdict: {row.verdict}" in card
    assert "study's baseline (uniform / ce)" in model_card(cell(study, BASELINE))
    same = tmp_path / "same"  # the baseline and one drawn like it: nothing is confirmed, the baseline stays
    for config in (BASELINE, SAME):
        for seed in (0, 1, 2):
            write_run(same, config, seed, PLANTED[config])
    card = model_card(cell(same, BASELINE))
    assert (
        "The study's recommendation: **uniform / ce** (this configuration): no alternative was confirmed"
        in card
    )


def test_the_rarest_class_interval_and_its_zero_width_case(study):
    run = cell(study, BETTER)
    with np.load(run / rd.outputs_file("test")) as z:
        labels, logits = z["labels"], z["logits"]
    f1, low, high = rarest_interval(labels, logits, 2)
    assert low < f1 < high and high - low < 0.5
    assert f"(95% CI [{low:.3f}, {high:.3f}]) on 40 test images" in model_card(run)
    never = logits.copy()
    never[:, 2] = -100.0  # the rarest class is never predicted: no first-order interval
    rd.save_npz(
        run / rd.outputs_file("test"), labels=labels, logits=never, features=np.zeros((len(labels), 4))
    )
    bound = sps.beta.ppf(0.975, 1, 40)
    assert "0 of them recognised" in model_card(run) and f"below {bound:.3f}" in model_card(run)


def test_card_command_writes_a_file_or_stdout_and_a_run_outside_a_study_says_so(study, tmp_path, capsys):
    lone = write_run(tmp_path / "elsewhere", BASELINE, 0, PLANTED[BASELINE])
    target = rd.cell_dir(tmp_path / "elsewhere", "fake", *BASELINE, 0)
    moved = tmp_path / "lone-run"
    target.rename(moved)
    assert main(["card", str(moved), "--out", str(tmp_path / "CARD.md")]) == 0
    text = (tmp_path / "CARD.md").read_text()
    assert "This run is not a cell of a study folder" in text and "`lone-run`" in text
    capsys.readouterr()
    assert main(["card", str(cell(study, BETTER)), "--out", "-"]) == 0
    assert capsys.readouterr().out.startswith("# Model card: FakeMNIST, oversample / ce+f1, seed 0")
    assert lone.name == "seed0"
    assert main(["card", str(moved), "--out", str(moved / "CARD.md")]) == 2
    assert not (moved / "CARD.md").exists()
    (moved / rd.METRICS_FILE).unlink()
    assert main(["card", str(moved)]) == 2
    assert "has not finished" in capsys.readouterr().err


def test_paths_are_cut_to_file_names_and_nothing_else_is():
    from imbal.export.card import portable
    from imbal.export.verdict import scrub

    assert scrub("fake (trained with dataset /home/alice/data/x.npz)") == "fake (trained with dataset x.npz)"
    assert scrub("C:\\data\\set.npz, no path here; 3/4 of it") == "set.npz, no path here; 3/4 of it"
    spec = {"kind": "folder", "csv": "/srv/a/labels.csv", "classes": ["benign/malignant", "normal"]}
    assert portable(spec) == {
        "kind": "folder",
        "csv": "labels.csv",
        "classes": ["benign/malignant", "normal"],
    }
    assert portable("/srv/a/set.npz") == "set.npz" and portable("retinamnist") == "retinamnist"


def test_a_study_whose_runs_folder_is_a_link_gets_its_card(tmp_path):
    scratch, study = tmp_path / "scratch", tmp_path / "linked"
    for seed in (0, 1):
        write_run(scratch, BASELINE, seed, PLANTED[BASELINE])
        write_run(scratch, BETTER, seed, PLANTED[BETTER])
    study.mkdir()
    (study / "runs").symlink_to(scratch / "runs")
    card = model_card(cell(study, BETTER, 1))
    assert "from the run `linked/runs/fake/oversample/ce+f1/seed1`" in card
    assert "seed 1 of **oversample / ce+f1** in the study `linked`" in card and str(tmp_path) not in card
