"""The report's calibration section: per-run temperatures and ECE/Brier, the table, the reliability diagram."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from imbal.calibration import temperature_scores
from imbal.engine import run_dir as rd
from imbal.metrics import ECE_BINS
from imbal.study.report.sections.reliability import calibration_blocks, calibration_table, reliability_bins

BASELINE, CHOSEN = ("uniform", "ce"), ("oversample", "ce+f1")


SHARPNESS = {BASELINE: 1.0, CHOSEN: 3.0}


def fake_runs(root):
    """Runs whose logits are calibrated (baseline) or 3x over-confident (chosen): stored outputs only."""
    rows = []
    for c, (config, k) in enumerate(SHARPNESS.items()):
        for seed in (0, 1):
            run = rd.cell_dir(root, "fake", *config, seed)
            for s, (split, n) in enumerate((("val", 400), ("test", 600))):
                g = torch.Generator().manual_seed(100 * c + 10 * seed + s)
                logits = 2 * torch.randn(n, 4, generator=g)
                labels = torch.multinomial(logits.softmax(-1), 1, generator=g)[:, 0]
                rd.save_npz(
                    run / rd.outputs_file(split), labels=labels.numpy(), logits=(k * logits).float().numpy()
                )
            rows.append({"sampler": config[0], "loss": config[1], "seed": seed, "run_dir": str(run)})
    return pd.DataFrame(rows)


def section(tmp_path, runs):
    def csv(frame, name):
        (tmp_path / "tables").mkdir(exist_ok=True)
        frame.to_csv(tmp_path / "tables" / f"fake_{name}.csv", index=False)

    return SimpleNamespace(runs=runs, dataset="fake", key="fake", figures=tmp_path / "figures", csv=csv)


def test_table_is_temperature_scaling_of_each_runs_stored_logits(tmp_path):
    runs = fake_runs(tmp_path)
    table = calibration_table(runs)
    r = runs.iloc[3]
    with np.load(f"{r.run_dir}/outputs_val.npz") as v, np.load(f"{r.run_dir}/outputs_test.npz") as t:
        want = temperature_scores(*(torch.from_numpy(z[k]) for z in (v, t) for k in ("logits", "labels")))
    assert table.iloc[3][list(want)].to_dict() == pytest.approx(want)
    over = table[table.loss == "ce+f1"]
    assert (over.temperature > 2).all() and (over.ece_scaled < over.ece / 2).all()
    assert (table[table.loss == "ce"].temperature.between(0.8, 1.25)).all()


def test_blocks_show_the_table_and_the_reliability_diagram_of_chosen_and_baseline(tmp_path):
    runs = fake_runs(tmp_path)
    blocks = calibration_blocks(section(tmp_path, runs), CHOSEN, BASELINE)
    assert (
        blocks[0].text == "Calibration of the probabilities" and f"{ECE_BINS} equal-width" in blocks[1].text
    )
    table = blocks[2]
    assert table.header == [
        "configuration",
        "seeds",
        "temperature",
        "ECE",
        "ECE scaled",
        "Brier",
        "Brier scaled",
    ]
    assert [row[0] for row in table.rows] == ["uniform / ce (baseline)", "oversample / ce+f1 (recommended)"]
    assert (0, 3) in table.bold  # the calibrated baseline has the lower plain ECE
    assert blocks[3].kind == "image" and blocks[3].path.is_file()
    assert (tmp_path / "tables" / "fake_calibration.csv").is_file()
    bins = reliability_bins(runs, CHOSEN)
    assert bins["plain"][0].sum() == bins["scaled"][0].sum() == 2 * 600  # every test sample of both seeds
    # over-confident: in its top bins the accuracy stays below the confidence
    top = bins["plain"][:, -3:].sum(1)
    assert top[2] / top[0] < top[1] / top[0] - 0.1


def test_chosen_equal_to_baseline_gives_one_panel(tmp_path, monkeypatch):
    from imbal.study.report import figures

    panels = []
    monkeypatch.setattr(
        figures, "reliability", lambda curves, title, path: panels.append(list(curves)) or path
    )
    calibration_blocks(section(tmp_path, fake_runs(tmp_path)), BASELINE, BASELINE)
    assert panels == [["uniform / ce (baseline)"]]
