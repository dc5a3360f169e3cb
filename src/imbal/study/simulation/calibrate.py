"""Fit the simulator's noise to a published study (docs/method.md, "Statistics of a report").

Three numbers per split, measured on the study's runs and on simulated studies alike
(:data:`~imbal.study.simulation.studies.TARGET_NAMES`): the median over configurations of one
configuration's balanced-accuracy spread over seeds, and over comparisons with the baseline the
median seed SD and image-level standard error of the paired difference. The seven noise parameters
(seed, run and epoch spreads; the shared and configuration-specific image loadings of validation
and test) are fitted by Nelder-Mead on the relative squared error of the six numbers, with common
random numbers so the objective is smooth::

    python -m imbal.study.simulation.calibrate runs/reproduction/outputs.npz   # a report's archive

prints what the study measures, the fitted :class:`~imbal.study.simulation.studies.Calibration` and
what it simulates. The fits in :mod:`imbal.study.simulation.studies` (``RETINA``, ``VESSEL``) came
from the committed studies' predictions (docs/reproduction); tests/study/simulation pins both.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import minimize

from imbal.metrics import confusion_matrices, confusion_scores
from imbal.study.analysis.archive import load_archive
from imbal.study.analysis.choice import Grid
from imbal.study.analysis.outputs import StudyOutputs
from imbal.study.simulation.studies import TARGET_NAMES, Calibration, draw, null

Targets = tuple[tuple[float, float, float], tuple[float, float, float]]  # validation, test


def measured(study: StudyOutputs, metric: str = "balanced_accuracy") -> Targets:
    """The three calibration numbers of a study's runs, on validation and on test (:data:`TARGET_NAMES`)."""
    grid = Grid(study)
    out = []
    for split in ("val", "test"):
        scores = grid.scores(split, metric)[0]
        ests = grid.estimates(split, metric)
        out.append(
            (
                float(np.median(scores.std(1, ddof=1))),
                float(np.median([e.seed_sd for e in ests])),
                float(np.median([math.sqrt(e.image_var) for e in ests])),
            )
        )
    return out[0], out[1]


def typical_recall(study: StudyOutputs) -> tuple[float, ...]:
    """The test recall per class of the study's runs on average: the calibration's typical configuration."""
    part = study.test
    cm = confusion_matrices(torch.from_numpy(part.labels), torch.from_numpy(part.preds), study.num_classes)
    return tuple(round(float(v), 3) for v in confusion_scores(cm)["recall_per_class"].mean(0))


def simulated(calibration: Calibration, studies: int = 200, seed: int = 7) -> Targets:
    """The calibration numbers of ``studies`` simulated 16 x 5 studies of equal configurations (means)."""
    rng = np.random.default_rng(seed)
    truth = null(calibration)
    values = np.array([[list(t) for t in measured(draw(truth, rng))] for _ in range(studies)]).mean(0)
    val, test = (tuple(float(v) for v in row) for row in values)
    return (val[0], val[1], val[2]), (test[0], test[1], test[2])


def _params(x: np.ndarray) -> dict[str, float | tuple[float, float]]:
    """Calibration fields from the optimiser's unconstrained vector (rounded as the constants are written)."""

    def loadings(r: float, angle: float) -> tuple[float, float]:
        length = 1 / (1 + math.exp(-r))  # a^2 + b^2 <= 1
        return round(length * math.cos(angle), 4), round(length * math.sin(angle), 4)

    return {
        "seed_sd": round(math.exp(x[0]), 4),
        "run_sd": round(math.exp(x[1]), 4),
        "epoch_sd": round(math.exp(x[2]), 4),
        "val_loadings": loadings(x[3], x[4]),
        "test_loadings": loadings(x[5], x[6]),
    }


def _vector(cal: Calibration) -> np.ndarray:
    """The optimiser's vector of ``cal`` (the inverse of :func:`_params`)."""

    def polar(loadings: tuple[float, float]) -> tuple[float, float]:
        length = min(max(math.hypot(*loadings), 1e-3), 1 - 1e-3)
        return math.log(length / (1 - length)), math.atan2(loadings[1], loadings[0])

    spreads = [math.log(max(v, 1e-4)) for v in (cal.seed_sd, cal.run_sd, cal.epoch_sd)]
    return np.array([*spreads, *polar(cal.val_loadings), *polar(cal.test_loadings)])


def fit(start: Calibration, targets: Targets, studies: int = 30, evaluations: int = 350) -> Calibration:
    """The noise parameters that reproduce ``targets``, from those of ``start`` (its recall and sizes kept)."""
    goal = np.array(targets)

    def loss(x: np.ndarray) -> float:
        candidate: Calibration = replace(start, **_params(x))  # type: ignore[arg-type]
        got = np.array(simulated(candidate, studies, seed=1))
        return float((((got - goal) / goal) ** 2).sum())

    x0 = _vector(start)  # a warm start: a refit moves from the constants it improves on
    res = minimize(
        loss, x0, method="Nelder-Mead", options={"maxfev": evaluations, "xatol": 1e-3, "fatol": 1e-4}
    )
    return replace(start, **_params(res.x), measured=targets)  # type: ignore[arg-type]


def _table(name: str, targets: Targets) -> str:
    lines = [f"{name}:"]
    for split, values in zip(("validation", "test"), targets):
        lines.append("  " + split + ": " + ", ".join(f"{n} {v:.4f}" for n, v in zip(TARGET_NAMES, values)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("archive", help="a study report's outputs.npz (imbal report writes it)")
    ap.add_argument("--studies", type=int, default=200, help="simulated studies for the final check")
    args = ap.parse_args(argv)
    for key, study in load_archive(Path(args.archive)).items():
        targets = measured(study)
        val = tuple(int(v) for v in np.bincount(study.val.labels))
        test = tuple(int(v) for v in np.bincount(study.test.labels))
        start = Calibration(
            key, typical_recall(study), val, test, 0.01, 0.02, 0.02, (0.5, 0.5), (0.5, 0.5), targets
        )
        cal = fit(start, targets)
        print(_table(f"{key}, measured", targets))
        print(cal)
        print(_table("simulated", simulated(cal, args.studies)))


if __name__ == "__main__":
    main()
