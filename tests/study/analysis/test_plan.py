"""The analysis plan: fixed in the study folder before the runs, read by the report; bad plans and folders refused."""

import json
import shutil

import pytest
import yaml

from imbal.cli.main import main
from imbal.errors import ConfigError, RunFolderError
from imbal.study.analysis.plan import Plan, read_plan, write_plan
from imbal.study.run.grid import run_grid
from imbal.study.run.spec import load_study

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 200, "size": 12, "class_ratios": [0.7, 0.3]}
TRAIN = {"dataset": SYN, "widen_factor": 0.125, "epochs": 1}
# ce + 0 * f1 trains bit for bit like ce: the report must call the pair equivalent, never better or worse
TWINS = [{"samplers": ["uniform"], "losses": ["ce", "ce+0*f1"]}]


def study_file(path, **kw):
    data = {"train": TRAIN, "grid": TWINS, "seeds": [0, 1], **kw}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("twins")
    spec = load_study(
        study_file(tmp / "study.yaml", primary_metric="balanced_accuracy", equivalence_margin=0.03)
    )
    status = run_grid(spec, tmp / "s", log=lambda *_: None)
    assert len(status["done"]) == 4
    return tmp / "s"


def test_configurations_that_train_identically_are_reported_equivalent(twins, tmp_path, capsys):
    assert main(["report", str(twins), "--out", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    findings = md[md.index("### Findings") : md.index("### What was run")]
    assert (
        "Stay with uniform / ce, the simpler" in findings and "is equivalent to it within ±0.03" in findings
    )
    assert "better" not in findings.split("\n\n")[1] and "worse" not in findings.split("\n\n")[1]
    assert "The analysis plan was stored before the runs" in md


def test_plan_is_stored_and_a_different_plan_is_refused(twins, tmp_path):
    assert read_plan(twins) == Plan(margin=0.03)
    stored = json.loads((twins / "plan.json").read_text())
    assert {k: v for k, v in stored.items() if k != "sha256"} == {
        "primary_metric": "balanced_accuracy",
        "equivalence_margin": 0.03,
        "harm_margin": 0.02,
    }
    assert len(stored["sha256"]) == 64
    with pytest.raises(
        RunFolderError,
        match=r"planned with other analysis settings \(primary_metric 'balanced_accuracy' -> 'mcc'\)",
    ):
        write_plan(twins, Plan(primary="mcc", margin=0.03))
    spec = load_study(study_file(tmp_path / "other.yaml", primary_metric="mcc"))
    with pytest.raises(RunFolderError, match="planned with other analysis settings"):
        run_grid(spec, twins, log=lambda *_: None)
    assert read_plan(twins) == Plan(margin=0.03)  # nothing changed


def test_report_time_changes_are_labelled_post_hoc(twins, tmp_path):
    assert main(["report", str(twins), "--out", str(tmp_path), "--primary-metric", "macro_f1"]) == 0
    md = (tmp_path / "report.md").read_text()
    assert (
        "POST HOC: this report changes the stored plan (primary_metric 'balanced_accuracy' -> 'macro_f1')"
        in md
    )
    assert "Pre-specified: primary metric macro f1" in md


@pytest.mark.parametrize(
    "keys,message",
    [
        ({"primary_metric": "kappa"}, r"primary_metric must be one of \[.*\], got 'kappa'"),
        ({"equivalence_margin": -0.01}, r"equivalence_margin must be a number in \(0, 0.5\).*got -0.01"),
        ({"equivalence_margin": 2}, r"equivalence_margin must be a number in \(0, 0.5\).*got 2"),
        ({"harm_margin": "big"}, r"harm_margin must be a number .* got 'big'"),
    ],
)
def test_bad_plans_are_one_line_errors(tmp_path, capsys, keys, message):
    path = study_file(tmp_path / "study.yaml", **keys)
    with pytest.raises(ConfigError, match=message):
        load_study(path)
    assert main(["grid", "--config", str(path), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("imbal: error:")
    assert not (tmp_path / "s").exists()


def test_bad_study_folders_are_one_line_errors(twins, tmp_path, capsys):
    # a run without its test outputs: named, exit 2
    broken = tmp_path / "broken"
    shutil.copytree(twins, broken)
    (broken / "runs" / "synthetic" / "uniform" / "ce" / "seed1" / "outputs_test.npz").unlink()
    assert main(["report", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "outputs_test.npz is missing" in err and len(err.strip().splitlines()) == 1
    # one configuration: nothing to compare
    alone = tmp_path / "alone"
    shutil.copytree(twins, alone)
    shutil.rmtree(alone / "runs" / "synthetic" / "uniform" / "ce+0xf1")
    assert main(["report", str(alone)]) == 2
    assert "nothing to compare in" in capsys.readouterr().err
    # the report's own bad plan flags
    assert main(["report", str(twins), "--out", str(tmp_path / "r"), "--equivalence-margin", "0"]) == 2
    assert "equivalence_margin must be a number in (0, 0.5)" in capsys.readouterr().err


def test_an_edited_plan_is_post_hoc(twins, tmp_path):
    """plan.json carries the checksum of its keys: an edit after it was written is reported as post hoc."""
    from imbal.study.analysis.plan import resolve_plan

    copy = tmp_path / "s"
    shutil.copytree(twins, copy)
    assert "stored before the runs" in resolve_plan(copy)[1]
    data = json.loads((copy / "plan.json").read_text())
    (copy / "plan.json").write_text(json.dumps({**data, "equivalence_margin": 0.1}))
    plan, note = resolve_plan(copy)
    assert plan.margin == 0.1 and note.startswith("POST HOC: plan.json was edited after it was written")
    # a plan file from before checksums is taken as written
    del data["sha256"]
    (copy / "plan.json").write_text(json.dumps(data))
    assert "stored before the runs" in resolve_plan(copy)[1]


def test_a_plan_given_to_a_folder_without_one_is_post_hoc(twins, tmp_path):
    from imbal.study.analysis.plan import resolve_plan

    copy = tmp_path / "s"
    shutil.copytree(twins, copy)
    (copy / "plan.json").unlink()
    assert resolve_plan(copy)[1].startswith("No analysis plan is stored")
    plan, note = resolve_plan(copy, {"primary_metric": "mcc"})
    assert plan.primary == "mcc" and note.startswith(
        "POST HOC: this report gives this folder, which stored no plan"
    )


def test_a_primary_metric_the_rule_cannot_use_is_refused_before_any_run(tmp_path, capsys):
    for metric in ("ece", "brier", "qwk"):
        path = study_file(tmp_path / f"{metric}.yaml", primary_metric=metric)
        assert main(["grid", "--config", str(path), "--out", str(tmp_path / metric), "--dry-run"]) == 2
        assert (
            f"primary_metric must be one of ['balanced_accuracy', 'macro_f1', 'mcc', 'minority_f1'], got '{metric}'"
            in capsys.readouterr().err
        )
