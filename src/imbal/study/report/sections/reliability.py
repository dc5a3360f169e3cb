"""The report's calibration section: ECE and Brier of every configuration before and after temperature
scaling, and a reliability diagram of the recommended configuration beside the baseline.

Computed from each run's stored validation and test logits (``outputs_{val,test}.npz``), so runs
finished before ECE entered ``metrics.json`` are scored the same way (docs/method.md, "Calibration").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from imbal.calibration import fit_temperature, scale_logits, temperature_scores
from imbal.metrics import ECE_BINS, calibration_bins
from imbal.study.report import figures
from imbal.study.report.collect import loss_order, sampler_order
from imbal.study.report.data import DatasetReport
from imbal.study.report.render import Block
from imbal.study.report.sections.section import Section

COLUMNS = ("temperature", "ece", "ece_scaled", "brier", "brier_scaled")


def _outputs(data: DatasetReport, row: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One run's stored logits (as stored: float32) and the split's labels."""
    part = data.outputs.split(split)
    if part.logits is None:
        raise ValueError(f"{data.key} holds no logits: calibration needs a report read from run folders")
    return torch.from_numpy(part.logits[row]), torch.from_numpy(part.labels)


def calibration_table(data: DatasetReport) -> pd.DataFrame:
    """A row per run: its temperature (fit on validation) and test ECE / Brier before and after scaling."""
    rows = []
    for i, r in enumerate(data.runs.itertuples()):
        scores = temperature_scores(*_outputs(data, i, "val"), *_outputs(data, i, "test"))
        rows.append({"sampler": r.sampler, "loss": r.loss, "seed": r.seed, **scores})
    return pd.DataFrame(rows)


def reliability_bins(data: DatasetReport, config: tuple[str, str]) -> dict[str, np.ndarray]:
    """Test-set bins ``(3, ECE_BINS)`` of one configuration, summed over its seeds: plain and scaled."""
    out = {"plain": np.zeros((3, ECE_BINS)), "scaled": np.zeros((3, ECE_BINS))}
    for i, r in enumerate(data.runs.itertuples()):
        if (r.sampler, r.loss) != config:
            continue
        temperature = fit_temperature(*_outputs(data, i, "val")).temperature
        logits, labels = _outputs(data, i, "test")
        out["plain"] += calibration_bins(logits.float().softmax(-1), labels).numpy()
        scaled = scale_logits(logits.float(), temperature).softmax(-1)
        out["scaled"] += calibration_bins(scaled, labels).numpy()
    return out


def _cell(values: pd.Series, digits: int = 3) -> str:
    if len(values) < 2:
        return f"{values.mean():.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def _rows(table: pd.DataFrame, recommended: tuple[str, str], baseline: tuple[str, str]) -> tuple[list, set]:
    rows, bold = [], set()
    configs = [
        (s, l)
        for s in sampler_order(table.sampler)
        for l in loss_order(table.loss)
        if ((table.sampler == s) & (table.loss == l)).any()
    ]
    means = table.groupby(["sampler", "loss"])[["ece", "ece_scaled"]].mean()
    for i, config in enumerate(configs):
        grp = table[(table.sampler == config[0]) & (table.loss == config[1])]
        mark = " (baseline)" if config == baseline else " (recommended)" if config == recommended else ""
        rows.append(
            [f"{config[0]} / {config[1]}{mark}", str(len(grp))]
            + [_cell(grp[c], 2 if c == "temperature" else 3) for c in COLUMNS]
        )
        for col, key in ((3, "ece"), (4, "ece_scaled")):
            if means.loc[config, key] == means[key].min():
                bold.add((i, col))
    return rows, bold


def calibration_blocks(s: Section, recommended: tuple[str, str]) -> list[Block]:
    """The calibration table of every configuration and the reliability diagram, recommended vs baseline."""
    baseline = s.plan.baseline
    table = calibration_table(s.data)
    s.csv(table, "calibration")
    rows, bold = _rows(table, recommended, baseline)
    header = ["configuration", "seeds", "temperature", "ECE", "ECE scaled", "Brier", "Brier scaled"]
    text = (
        f"How far the test softmax is from the frequencies it claims: expected calibration error (ECE, "
        f"{ECE_BINS} equal-width confidence bins, lower is better) and the multi-class Brier score (0 is "
        "perfect, 2 the worst). 'Scaled': the logits divided by a temperature fit on the validation split "
        "(minimum NLL), a free post-hoc repair that changes no prediction. Mean ± std over seeds; lowest "
        "ECE in bold. Rebalancing (weights, oversampling, metric losses) typically distorts the probabilities: "
        "read them as risks only after scaling."
    )
    configs = {f"{baseline[0]} / {baseline[1]} (baseline)": baseline}
    if recommended != baseline:
        configs[f"{recommended[0]} / {recommended[1]} (recommended)"] = recommended
    curves = {
        name: reliability_bins(s.data, c)
        for name, c in configs.items()
        if c in set(zip(s.runs.sampler, s.runs.loss))
    }
    blocks = [Block("h3", "Calibration of the probabilities"), Block("p", text)]
    blocks.append(Block("table", header=header, rows=rows, bold=bold))
    if curves:
        path = figures.reliability(
            curves, f"{s.dataset}: reliability (test, all seeds)", s.figures / f"{s.key}_reliability.png"
        )
        blocks.append(Block("image", "Reliability diagram: accuracy against confidence per bin", path=path))
    return blocks
