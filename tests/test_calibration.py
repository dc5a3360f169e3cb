"""Temperature scaling: a miscalibrated model's ECE drops; the fit is the NLL minimum; no prediction changes."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imbal.calibration import (
    TEMPERATURE_RANGE,
    calibration_scores,
    fit_temperature,
    scale_logits,
    temperature_scores,
)


def calibrated_logits(n: int, c: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose softmax is the true label distribution: labels are drawn from it."""
    g = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(n, c, generator=g, dtype=torch.float64)
    labels = torch.multinomial(logits.softmax(-1), 1, generator=g)[:, 0]
    return logits, labels


@pytest.mark.parametrize("sharpness", [3.0, 0.4])  # over-confident and under-confident models
def test_temperature_scaling_repairs_a_miscalibrated_model(sharpness):
    val_logits, val_y = calibrated_logits(20000, 5, seed=0)
    test_logits, test_y = calibrated_logits(20000, 5, seed=1)
    fit = fit_temperature(sharpness * val_logits, val_y)
    assert fit.temperature == pytest.approx(sharpness, rel=0.05)  # undoes the distortion
    assert fit.nll < fit.nll_before and fit.n == 20000
    out = temperature_scores(sharpness * val_logits, val_y, sharpness * test_logits, test_y)
    assert out["ece"] > 0.05  # the distortion is visible ...
    assert out["ece_scaled"] < out["ece"] / 4 and out["ece_scaled"] < 0.02  # ... and gone after scaling
    assert out["brier_scaled"] < out["brier"]
    # the calibrated model itself needs no scaling
    assert fit_temperature(val_logits, val_y).temperature == pytest.approx(1.0, rel=0.05)


def test_fit_is_the_minimum_of_the_nll_over_a_fine_grid():
    logits, y = calibrated_logits(1000, 4, seed=2)
    logits = 2.5 * logits.float()
    fit = fit_temperature(logits, y)
    # log-spaced steps of 0.3%: the grid's best is within one step of the true minimum
    grid = np.exp(np.linspace(np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1]), 2001))
    z = logits.double()
    nll = [float(F.cross_entropy(z / t, y)) for t in grid]
    best = grid[int(np.argmin(nll))]
    assert fit.temperature == pytest.approx(best, rel=3e-3)
    assert fit.nll <= min(nll) + 1e-12
    assert fit.nll_before == pytest.approx(float(F.cross_entropy(logits.double(), y)))


def test_separable_validation_stays_inside_the_range():
    y = torch.arange(40) % 4
    logits = 10.0 * F.one_hot(y, 4).double()  # every sample right with a margin: NLL falls as T -> 0
    assert fit_temperature(logits, y).temperature == pytest.approx(TEMPERATURE_RANGE[0], rel=1e-6)


def test_scaling_never_changes_a_prediction_and_t1_is_the_plain_softmax():
    logits, y = calibrated_logits(500, 3, seed=3)
    assert torch.equal(scale_logits(logits, 2.7).argmax(-1), logits.argmax(-1))
    assert calibration_scores(logits, y, 1.0) == calibration_scores(logits, y)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: scale_logits(torch.zeros(2, 3), 0.0), r"temperature must be a finite number > 0, got 0.0"),
        (
            lambda: scale_logits(torch.zeros(2, 3), math.inf),
            r"temperature must be a finite number > 0, got inf",
        ),
        (
            lambda: fit_temperature(torch.zeros(3), torch.zeros(3, dtype=torch.long)),
            r"val_logits must be floating point of shape \(N, C\), got \(3,\)",
        ),
        (
            lambda: fit_temperature(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long)),
            r"val_labels must be integer class indices of shape \(3,\), got torch.int64 of shape \(2,\)",
        ),
        (
            lambda: fit_temperature(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)),
            r"val_logits must hold >= 1 sample, got 0",
        ),
        (
            lambda: temperature_scores(
                torch.zeros(3, 2),
                torch.zeros(3, dtype=torch.long),
                torch.zeros(3, 4),
                torch.zeros(3, dtype=torch.long),
            ),
            r"test_logits must have shape \(N, 2\) like val_logits, got \(3, 4\)",
        ),
    ],
)
def test_inputs_are_checked(call, message):
    with pytest.raises(ValueError, match=message):
        call()
