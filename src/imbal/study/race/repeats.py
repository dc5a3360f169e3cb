"""A race over a cross-validated study's repeats (docs/method.md, "A race over repeats").

A round gives every configuration still in the race one more repeat of all k folds (a fresh
partition, the same for every configuration). Its evidence is the report's own: per configuration the
validation primary pooled over all N images per repeat (one confusion matrix, never a mean over
folds), and per pair the cross-validated two-level estimate of
:func:`~imbal.study.analysis.crossval.cv_pairs` (the spread of the k per-fold differences of each
repeat beyond their own images' noise, plus the N images' noise). One repeat already has that spread,
so the first look comes after one repeat; the rules (drops, equivalence, limits) are
:mod:`imbal.study.race.rules`'.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from imbal.engine import run_dir as rd
from imbal.errors import RunFolderError
from imbal.study.analysis.crossval import Runs, cv_pairs, view_scores
from imbal.study.analysis.outputs import (
    Config,
    Folds,
    SplitOutputs,
    StudyOutputs,
    assemble_folds,
    pool_labels,
)
from imbal.study.analysis.plan import Plan
from imbal.study.race.rules import Evidence, RaceOutcome, Rules, progress


def fold_evidence(outputs: StudyOutputs, plan: Plan) -> Callable[[list[Config], int], Evidence | None]:
    """``evidence(alive, n)`` of a pooled cross-validated study: the round after ``n`` repeats (None while a
    configuration in it, or the baseline, lacks one of repeats 0..n-1)."""
    if outputs.folds is None:
        raise ValueError("a race over repeats needs a cross-validated study (its outputs have no folds)")
    folds = outputs.folds

    def evidence(alive: list[Config], n: int) -> Evidence | None:
        if any(not set(range(n)) <= set(outputs.seeds_of(c)) for c in [*alive, plan.baseline]):
            return None
        rows = np.array([[outputs.row[(c, r)] for r in range(n)] for c in alive])
        runs = Runs.of(outputs, "val", rows, plan.primary)
        part = folds.for_repeats(list(range(n)))
        owner, mask = part.owner("val"), np.ones((n, part.k), dtype=bool)
        means = plan.sign * view_scores(runs, owner, mask)[0].mean(1)
        k = len(alive)
        if k == 1:
            return means, [[]]
        idx = [(j, i) for j in range(k) for i in range(k) if j != i]
        # est[j][i] is "j better than i": j minus i, or i minus j for a metric where lower is better
        better, worse = np.array(idx).T if plan.sign > 0 else np.array(idx).T[::-1]
        est: list[list] = [[None] * k for _ in range(k)]
        for (j, i), e in zip(idx, cv_pairs(runs, owner, mask, better, worse)):
            est[j][i] = e
        return means, est

    return evidence


def replay_repeats(outputs: StudyOutputs, plan: Plan, rules: Rules) -> RaceOutcome:
    """The race on a finished cross-validated study's repeats (in order), without training."""
    state = progress(outputs.configs, plan.baseline, rules, fold_evidence(outputs, plan))
    if state.outcome is None:
        have = min(len(outputs.seeds_of(c)) for c in outputs.configs)
        raise ValueError(
            f"the study has {have} repeats per configuration; the race needs up to {rules.max_seeds}"
        )
    return state.outcome


def folder_evidence(
    root: Path, label: str, plan: Plan, folds: int
) -> Callable[[list[Config], int], Evidence | None]:
    """:func:`fold_evidence` of a race folder's finished fold runs, pooled once all runs a round needs are there
    (a round's cells are looked up first, so a race waiting for its runs reads no outputs)."""
    loaded: dict[tuple[Config, int], dict] = {}

    def evidence(alive: list[Config], n: int) -> Evidence | None:
        keys = [(c, r) for c in dict.fromkeys([*alive, plan.baseline]) for r in range(n)]
        cells = {key: [rd.cell_dir(root, label, *key[0], key[1], f) for f in range(folds)] for key in keys}
        if not all(rd.is_finished(cell) for runs in cells.values() for cell in runs):
            return None
        for key in keys:
            if key not in loaded:
                loaded[key] = {f: rd.read_outputs(run, "val") for f, run in enumerate(cells[key])}
        pooled = pooled_validation(loaded, folds, _minority(cells[keys[0]][0]), plan)
        return fold_evidence(pooled, plan)(alive, n)

    return evidence


def _minority(run: Path) -> int | None:
    """The rarest class a run recorded (None: the pooled labels' rarest)."""
    value = rd.read_json(run / rd.METRICS_FILE)["dataset"].get("minority_class")
    return None if value is None else int(value)


def pooled_validation(
    loaded: dict[tuple[Config, int], dict], folds: int, minority: int | None, plan: Plan
) -> StudyOutputs:
    """The fold runs' validation outputs (``{(config, repeat): {fold: outputs}}``) pooled per configuration and
    repeat: every image's one validation prediction, and each image's fold (run f validates on fold f + 1).
    A race reads validation only: the pooled study's test split holds the same arrays, never test outputs."""
    first = next(iter(next(iter(loaded.values())).values()))
    labels = pool_labels([o for g in loaded.values() for o in g.values()])
    n = len(labels)
    repeats = sorted({r for _, r in loaded})
    ids = np.full((len(repeats), n), -1, dtype=np.int64)
    for (config, r), g in loaded.items():
        for f, o in g.items():
            # run f validates on fold f + 1
            row, idx, fold = repeats.index(r), o[rd.POOL_INDEX], (f + 1) % folds
            if ((ids[row, idx] >= 0) & (ids[row, idx] != fold)).any():
                raise RunFolderError(
                    f"{config[0]}/{config[1]} repeat {r} fold {f} validated on other images than another "
                    "configuration's fold of that repeat; the configurations of a repeat must share its partition"
                )
            ids[row, idx] = fold
    if (ids < 0).any():
        raise RunFolderError("the race's fold runs of a repeat do not validate every pooled image once")
    keys = list(loaded)
    logits = np.stack(
        [
            assemble_folds(
                f"{c[0]}/{c[1]} repeat {r}", sorted(loaded[(c, r)].items()), labels, first["logits"].shape[1]
            )
            for c, r in keys
        ]
    )
    val = SplitOutputs(labels, logits.argmax(-1), logits)
    classes = logits.shape[-1]
    rarest = int(np.bincount(labels, minlength=classes).argmin()) if minority is None else minority
    return StudyOutputs(
        keys, val, val, classes, rarest, plan.baseline, None, Folds(ids, folds, tuple(repeats))
    )
