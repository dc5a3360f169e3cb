"""docs/reproduction: the committed claim tables are what the claims script makes from the committed predictions."""

import importlib.util
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "reproduction"


def claims_module():
    spec = importlib.util.spec_from_file_location("claims", DOCS / "claims.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_claims_are_recomputed_from_the_committed_predictions(data_root):
    # predictions.json holds no labels: the claims pair it with the data sets' own (data_root: CI has them)
    claims = claims_module()
    assert all(
        (DOCS / name / claims.PREDICTIONS).is_file() for _, *names in claims.DATASETS for name in names
    )
    assert not list(DOCS.rglob("*.npz"))
    text = claims.claims_markdown(DOCS, data_root)
    assert text == (DOCS / "claims.md").read_text()


def test_no_committed_file_names_a_machine_path():
    for path in (
        list((ROOT / "docs").rglob("*.md")) + list((ROOT / "docs").rglob("*.csv")) + [ROOT / "README.md"]
    ):
        text = path.read_text()
        for marker in ("/work/", "/tmp/", "/home/", "/root/"):
            assert marker not in text, f"{path.relative_to(ROOT)} holds a machine path ({marker})"


def test_the_makefile_publishes_every_data_set_the_claims_read():
    claims = claims_module()
    lines = [line for line in (ROOT / "Makefile").read_text().splitlines() if "claims.py" in line]
    published = set()
    for line in lines:
        words = shlex.split(line.strip())
        args = claims.parser().parse_args(words[words.index("docs/reproduction/claims.py") + 1 :])
        published |= {name for _, name in args.publish}
    expected = {folder for _, *folders in claims.DATASETS for folder in folders}
    expected |= {folder for _, folder in claims.CV_DATASETS}
    assert {title for title, *_ in claims.DATASETS} == set(claims.CE_GAINS)
    assert published == expected


def test_a_study_published_before_its_ablation_says_claim_6_is_pending(data_root, tmp_path):
    claims = claims_module()
    measured, _ = claims.dataset_claims(
        DOCS / "study", tmp_path / "vessel_ablation", "RetinaMNIST", data_root
    )
    assert measured[5] == ("the batch-size ablation (vessel_ablation) is not published yet", "pending")
    assert [w for _, w in measured[:5]] == [
        w
        for _, w in claims.dataset_claims(DOCS / "study", DOCS / "batch_ablation", "RetinaMNIST", data_root)[
            0
        ][:5]
    ]


def test_predictions_paired_with_another_data_set_are_refused(data_root):
    claims = claims_module()
    with pytest.raises(ValueError, match=r"batch10: num_classes is 2; retinamnist has 5"):
        claims.load_predictions(DOCS / "vessel_ablation", "retinamnist", data_root)


def _swap_seeds(d):
    runs = d["runs"]
    i = next(k for k, r in enumerate(runs) if r[:2] == ["uniform", "ce"] and r[2] == 0)
    j = next(k for k, r in enumerate(runs) if r[:2] == ["uniform", "ce"] and r[2] == 1)
    runs[i][2], runs[j][2] = 1, 0


def _flip_prediction(d):
    row = d["test"]["preds"][0]
    d["test"]["preds"][0] = str((int(row[0]) + 1) % 5) + row[1:]


EDITS = [
    (lambda d: d.update(minority=0), r"minority is 0; retinamnist has 4"),
    (
        lambda d: d.update(class_names=["a", "b", "c", "d", "e"]),
        r"class_names is \['a', .*retinamnist has \['0'",
    ),
    (_swap_seeds, r"run uniform/ce/[01] predicts a test balanced_accuracy of .* runs.csv records"),
    (_flip_prediction, r"predicts a test \w+ of .* the predictions were edited"),
    (lambda d: d["runs"][0].__setitem__(1, "focal+ce"), r"its runs are not the 80 runs its runs.csv lists"),
]


@pytest.mark.parametrize(("edit", "message"), EDITS)
def test_edited_predictions_are_refused(data_root, tmp_path, edit, message):
    import json
    import shutil

    claims = claims_module()
    folder = tmp_path / "study"
    shutil.copytree(DOCS / "study", folder)
    data = json.loads((folder / claims.PREDICTIONS).read_text())
    edit(data["retinamnist"])
    (folder / claims.PREDICTIONS).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        claims.load_predictions(folder, "retinamnist", data_root)
