"""The demo end to end at a tiny size: it prints the findings block first."""

import pytest

from imbal.study import demo


@pytest.mark.slow
def test_demo_prints_findings_first(tmp_path, capsys, monkeypatch):
    """The default design, cross-validated (3 configurations x folds), at a tiny size."""
    small = {"kind": "synthetic", "spatial_dims": 2, "n": 300, "size": 12, "class_ratios": [0.6, 0.25, 0.15]}
    monkeypatch.setattr(demo, "pick_dataset", lambda: ("synthetic", small, "SYNTHETIC data (test)"))
    monkeypatch.setattr(demo, "TRAIN", {**demo.TRAIN, "widen_factor": 0.125})
    assert demo.main(["--out", str(tmp_path / "demo"), "--epochs", "1", "--folds", "3"]) == 0
    out = capsys.readouterr().out
    assert "3 configurations x 3 folds over every labelled image" in out
    body = out[out.index("### Findings") :]
    assert body.index("### Findings") < body.index("### What was run") < body.index("### Balanced accuracy")
    answer = body.split("\n\n")[1]
    assert answer.startswith(("Use ", "Stay with ", "Undecided", "Either", "No configuration qualifies"))
    assert "3-fold cross-validation x 1 repeat(s)" in body
    assert "open the report:" in out


def test_offline_demo_uses_the_hard_synthetic_set_and_says_so(monkeypatch, capsys):
    import imbal.data
    from imbal.data import load_dataset
    from imbal.errors import MissingFileError

    def offline(*_a, **_k):
        raise MissingFileError("retinamnist.npz not found")

    monkeypatch.setattr(imbal.data, "load_medmnist", offline)
    label, spec, description = demo.pick_dataset()
    assert label == "synthetic" and "SYNTHETIC" in description
    err = capsys.readouterr().err
    assert "RUNNING ON THE BUILT-IN SYNTHETIC SET" in err and "retinamnist.npz not found" in err
    splits = load_dataset(spec)
    rare = int(splits.train.minority_class)
    # RetinaMNIST's class mix, and enough rare test images for a per-class F1 worth reading
    assert splits.synthetic and splits.train.num_classes == 5 and rare == 4
    assert int(splits.test.class_counts[rare]) >= 40 and len(splits.train) > 1000
