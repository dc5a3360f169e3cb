"""The demo end to end at a tiny size: it prints the findings block first."""

import pytest

from imbal.study import demo


@pytest.mark.slow
def test_demo_prints_findings_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo, "TRAIN", {**demo.TRAIN, "widen_factor": 0.125, "train_subset": 120})
    assert demo.main(["--out", str(tmp_path / "demo"), "--epochs", "1", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    body = out[out.index("### Findings") :]
    assert body.index("### Findings") < body.index("### What was run") < body.index("### Balanced accuracy")
    answer = body.split("\n\n")[1]
    assert answer.startswith(("Use ", "Stay with ", "Undecided", "Either", "No configuration qualifies"))
    assert "run at least 3 seeds" in body  # one seed: the caveat is in the findings
    assert "open the report:" in out
