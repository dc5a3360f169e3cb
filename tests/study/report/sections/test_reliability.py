"""The report's calibration section: per-run temperatures and ECE/Brier, the table, the reliability diagram."""

import numpy as np
import pandas as pd
import pytest
import torch

from imbal.calibration import temperature_scores
from imbal.engine import run_dir as rd
from imbal.metrics import ECE_BINS
from imbal.study.analysis.plan import Plan
from imbal.study.report.collect import read_outputs
from imbal.study.report.data import DatasetReport, Facts
from imbal.study.report.sections.reliability import calibration_blocks, calibration_table, reliability_bins
from imbal.study.report.sections.section import Section

BASELINE, CHOSEN = ("uniform", "ce"), ("oversample", "ce+f1")


SHARPNESS = {BASELINE: 1.0, CHOSEN: 3.0}


def fake_runs(root):
    """Runs whose logits are calibrated (baseline) or 3x over-confident (chosen): stored outputs only."""
    rows = []
    # one data set: the labels of a split are drawn once from calibrated probabilities, and every run
    # sees them through its own logits (a little noise per run), k times too sharp
    splits = {}
    for s, (split, n) in enumerate((("val", 400), ("test", 600))):
        g = torch.Generator().manual_seed(s)
        base = 2 * torch.randn(n, 4, generator=g)
        splits[split] = (base, torch.multinomial(base.softmax(-1), 1, generator=g)[:, 0])
    for c, (config, k) in enumerate(SHARPNESS.items()):
        for seed in (0, 1):
            run = rd.cell_dir(root, "fake", *config, seed)
            for s, (split, (base, labels)) in enumerate(splits.items()):
                g = torch.Generator().manual_seed(100 * c + 10 * seed + s)
                logits = base + 0.05 * torch.randn(base.shape, generator=g)
                rd.save_npz(
                    run / rd.outputs_file(split), labels=labels.numpy(), logits=(k * logits).float().numpy()
                )
            rows.append({"sampler": config[0], "loss": config[1], "seed": seed, "run_dir": str(run)})
    runs = pd.DataFrame(rows)
    facts = Facts(
        "fake", "", True, ["a", "b", "c", "d"], 3, [1, 1, 1, 1], [], {"train": 4, "val": 400, "test": 600}
    )
    return DatasetReport("fake", facts, runs, read_outputs(runs, facts))


def section(tmp_path, data):
    return Section(data, Plan(), None, tmp_path / "tables", tmp_path / "figures")


def test_table_is_temperature_scaling_of_each_runs_stored_logits(tmp_path):
    data = fake_runs(tmp_path)
    table = calibration_table(data)
    r = data.runs.iloc[3]
    with np.load(f"{r.run_dir}/outputs_val.npz") as v, np.load(f"{r.run_dir}/outputs_test.npz") as t:
        want = temperature_scores(*(torch.from_numpy(z[k]) for z in (v, t) for k in ("logits", "labels")))
    assert table.iloc[3][list(want)].to_dict() == pytest.approx(want)
    over = table[table.loss == "ce+f1"]
    assert (over.temperature > 2).all() and (over.ece_scaled < over.ece / 2).all()
    assert (table[table.loss == "ce"].temperature.between(0.8, 1.25)).all()


def test_blocks_show_the_table_and_the_reliability_diagram_of_chosen_and_baseline(tmp_path):
    data = fake_runs(tmp_path)
    blocks = calibration_blocks(section(tmp_path, data), CHOSEN)
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
    bins = reliability_bins(data, CHOSEN)
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
    calibration_blocks(section(tmp_path, fake_runs(tmp_path)), BASELINE)
    assert panels == [["uniform / ce (baseline)"]]
