"""Test the study's six claims from the committed predictions (see docs/reproduction.md).

    python docs/reproduction/claims.py                      # claims.md from the committed files
    python docs/reproduction/claims.py --publish runs/reproduction study --publish runs/batch_ablation batch_ablation

``--publish`` first copies each finished study's report, tables and figures under
``docs/reproduction`` with its hard predictions (``predictions.json``, taken from the report's
``outputs.npz``: no labels, no logits); the claims are then computed from those committed files and
the data set's own labels (../shared/data or the md5-checked download), so anyone can recompute
every number without training.

Statistics as in every report (docs/method.md, "Statistics of a report"): a configuration that a
claim has to pick ("the best CE+metric") is picked on validation, cross-fitted over seeds, and
confirmed on test once, with intervals that hold seed-to-seed and test-image noise. Words:
**reproduced** = a verdict "better" in the study's direction; **not reproduced** = the interval
excludes the study's effect (scaled to this baseline), or the effect is significantly the other way;
**inconclusive** otherwise. Relative changes are quoted only against a baseline of at least 0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from imbal.study.analysis.archive import load_archive
from imbal.study.analysis.choice import Grid, confirm
from imbal.study.analysis.outputs import Folds, SplitOutputs, StudyOutputs
from imbal.study.analysis.plan import Plan
from imbal.study.analysis.stats import Estimate, Verdict, adjust_pvalues, paired_estimate, verdict
from imbal.study.race.rules import Rules
from imbal.study.report.tables import RELATIVE_FLOOR

PREDICTIONS = "predictions.json"
# the MedMNIST set each title's labels come from (../shared/data or the md5-checked download)
DATA = {"RetinaMNIST": "retinamnist", "VesselMNIST3D": "vesselmnist3d"}


def _sha(labels: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(labels, dtype=np.int64).tobytes()).hexdigest()


def write_predictions(archive: Path, dest: Path) -> None:
    """A study archive's hard predictions as JSON digit strings: no labels (they are the data's) and
    no logits (bulk the claims do not read), with each split's label checksum to pair them again."""
    out = {}
    for label, st in load_archive(archive).items():
        if st.num_classes > 10:
            raise ValueError(f"{label}: {st.num_classes} classes do not fit one digit per prediction")
        facts = {"num_classes": st.num_classes, "minority": st.minority, "class_names": st.class_names}
        runs = [[c[0], c[1], seed] for c, seed in st.runs]
        splits = {
            name: {
                "labels_sha256": _sha(part.labels),
                "preds": ["".join(map(str, row)) for row in part.preds],
            }
            for name, part in (("val", st.val), ("test", st.test))
        }
        out[label] = {**facts, "runs": runs, **splits}
        if st.folds is not None:  # a cross-validated study: each pooled image's test fold per repeat
            out[label]["folds"] = st.folds.k
            out[label]["fold_ids"] = ["".join(map(str, row)) for row in st.folds.ids]
            out[label]["fold_repeats"] = list(st.folds.repeat_ids)
    dest.write_text(json.dumps(out, indent=1) + "\n")


def load_predictions(folder: Path, data: str, data_root: Path | None = None) -> dict[str, StudyOutputs]:
    """``{data set: StudyOutputs}`` from a published folder's predictions and the labels of ``data``.

    Nothing in predictions.json is taken on trust: the labels' checksums, the class names, the
    number of classes and the rarest class must be the data set's own, and every run's test
    predictions must give the balanced accuracy its row of the report's runs.csv records (an edited
    seed, configuration or prediction changes a run's score or its pairing).
    """
    from imbal.data import load_medmnist

    splits = load_medmnist(data, root=data_root)
    recorded = pd.read_csv(folder / "runs.csv")
    out = {}
    for label, d in json.loads((folder / PREDICTIONS).read_text()).items():
        where = f"{folder / PREDICTIONS}: {label}"
        _check_facts(where, d, splits, data)
        if "fold_ids" in d:  # cross-validated: both splits are the pool (train, val, test in order)
            pool = np.concatenate([splits[name].labels.numpy() for name in ("train", "val", "test")]).astype(
                np.int64
            )
            labels = {"val": pool, "test": pool}
        else:
            labels = {name: splits[name].labels.numpy().astype(np.int64) for name in ("val", "test")}
        parts = {}
        for name in ("val", "test"):
            if _sha(labels[name]) != d[name]["labels_sha256"]:
                raise ValueError(f"{where} was not scored on {data}'s {name} split")
            preds = np.array([[int(ch) for ch in row] for row in d[name]["preds"]], dtype=np.int64)
            if preds.shape != (len(d["runs"]), len(labels[name])) or preds.max(initial=0) >= d["num_classes"]:
                raise ValueError(f"{where}: {name} predictions do not hold one class per run and image")
            parts[name] = SplitOutputs(labels[name], preds, None)
        runs = [((sampler, loss), seed) for sampler, loss, seed in d["runs"]]
        mine = recorded[recorded.label == label]
        if "fold_ids" in d:
            ids = np.array([[int(ch) for ch in row] for row in d["fold_ids"]], dtype=np.int64)
            _check_fold_runs(where, runs, parts["test"], mine, ids, d["num_classes"])
        else:
            _check_runs(where, label, runs, parts["test"], mine, d["num_classes"])
        facts = (d["num_classes"], d["minority"], BASE, d["class_names"])
        folds = None
        if "fold_ids" in d:
            ids = np.array([[int(ch) for ch in row] for row in d["fold_ids"]], dtype=np.int64)
            folds = Folds(ids, int(d["folds"]), tuple(d.get("fold_repeats", ())))
        out[label] = StudyOutputs(runs, parts["val"], parts["test"], *facts, folds)
    return out


def _check_facts(where: str, d: dict, splits, data: str) -> None:
    train = splits["train"]
    facts = {
        "num_classes": train.num_classes,
        "minority": train.minority_class,
        "class_names": [str(c) for c in train.class_names],
    }
    for key, value in facts.items():
        if d.get(key) != value:
            raise ValueError(f"{where}: {key} is {d.get(key)!r}; {data} has {value!r}")


def _check_runs(
    where: str, label: str, runs: list, test: SplitOutputs, recorded: pd.DataFrame, k: int
) -> None:
    import torch

    from imbal.metrics import confusion_matrices, metrics_from_confusion

    keys = [(c[0], c[1], seed) for c, seed in runs]
    listed = sorted(zip(recorded.sampler, recorded.loss, recorded.seed.astype(int)))
    if len(set(keys)) != len(keys) or sorted(keys) != listed:
        raise ValueError(f"{where}: its runs are not the {len(listed)} runs its runs.csv lists")
    table = recorded.set_index(["sampler", "loss", "seed"])
    cms = confusion_matrices(torch.from_numpy(test.labels), torch.from_numpy(test.preds), k)
    for key, cm in zip(keys, cms):
        scores = metrics_from_confusion(cm)
        for metric in ("balanced_accuracy", "macro_f1", "mcc", "accuracy"):
            score, stored = float(scores[metric]), float(table.loc[key, metric])
            if abs(score - stored) > 1e-9:
                raise ValueError(
                    f"{where}: run {'/'.join(map(str, key))} predicts a test {metric} of {score:.4f}, runs.csv "
                    f"records {stored:.4f}: the predictions were edited or belong to other runs"
                )


def _check_fold_runs(
    where: str, runs: list, test: SplitOutputs, recorded: pd.DataFrame, ids: np.ndarray, k: int
) -> None:
    """A cross-validated study: every fold run of runs.csv must score, on its own fold's images of the
    pooled predictions, the test metrics it records (an edited prediction, fold id or run changes one)."""
    import torch

    from imbal.metrics import confusion_matrices, metrics_from_confusion

    folds = int(ids.max()) + 1
    if len(recorded) != len(runs) * folds:
        raise ValueError(
            f"{where}: {len(runs)} pooled runs x {folds} folds, but runs.csv lists {len(recorded)} runs"
        )
    table = recorded.set_index(["sampler", "loss", "seed", "cv_fold"])
    for i, ((sampler, loss), repeat) in enumerate(runs):
        for fold in range(folds):
            images = ids[repeat] == fold
            cm = confusion_matrices(
                torch.from_numpy(test.labels[images]), torch.from_numpy(test.preds[i][images][None]), k
            )[0]
            scores = metrics_from_confusion(cm)
            for metric in ("balanced_accuracy", "macro_f1", "mcc", "accuracy"):
                score, stored = float(scores[metric]), float(table.loc[(sampler, loss, repeat, fold), metric])
                if abs(score - stored) > 1e-9:
                    raise ValueError(
                        f"{where}: {sampler}/{loss} repeat {repeat} fold {fold} predicts a test {metric} of "
                        f"{score:.4f}, runs.csv records {stored:.4f}: the predictions or fold ids were edited"
                    )


HERE = Path(__file__).resolve().parent
CE_METRIC = ["ce+f1", "ce+mcc"]
METRIC_ONLY = ["f1", "mcc"]
BASE = ("uniform", "ce")


def word(v: Verdict, est: Estimate, study_effect: float) -> str:
    _low, high = est.interval(0.95)
    if v is Verdict.BETTER:
        return "reproduced"
    if v is Verdict.WORSE or high < study_effect:
        return "not reproduced"
    return "inconclusive"


def change(value: float, base: float) -> str:
    if abs(base) >= RELATIVE_FLOOR:
        return f"{value:.3f} vs {base:.3f} ({(value - base) / abs(base) * 100:+.1f}% relative)"
    return f"{value:.3f} vs {base:.3f} ({value - base:+.3f} absolute; baseline under {RELATIVE_FLOOR:g}, no per cent)"


def fmt(est: Estimate, v: Verdict, p_adj: float | None = None) -> str:
    low, high = est.interval(0.95)
    adj = f", Holm p {p_adj:.3f}" if p_adj is not None else ""
    return f"{est.difference:+.3f} [{low:+.3f}, {high:+.3f}], p {est.p_value:.3f}{adj}: {v}"


def subset(study: StudyOutputs, configs: list[tuple[str, str]]) -> StudyOutputs:
    """The same runs, restricted to ``configs`` (the baseline always kept)."""
    return study.select([i for i, (c, _) in enumerate(study.runs) if c in configs or c == study.baseline])


def best_ce_metric(study: StudyOutputs, metric: str, relative: float) -> tuple[str, str]:
    """Claims 1-2: the best CE+metric configuration on validation (no screens), confirmed on test."""
    configs = [c for c in study.configs if c[1] in CE_METRIC]
    plan = Plan(primary=metric)
    grid = Grid(subset(study, configs))
    conf = confirm(grid, plan, screens=False)
    est, v = conf.estimate, conf.verdict
    scores = grid.scores("test", metric)[0].mean(1)
    picks = pd.Series([f"{s} / {loss}" for s, loss in conf.fold_choices]).value_counts()
    chosen = ", ".join(f"{k} ({n} of {len(conf.fold_choices)} folds)" for k, n in picks.items())
    pick = grid.configs.index(conf.fold_choices[0])
    effect = relative * scores[0]
    text = (
        f"chosen on validation: {chosen}; test {change(scores[pick], scores[0])}; {fmt(est, v)}; "
        f"the study's effect here: {effect:+.3f}"
    )
    return text, word(v, est, effect)


def instability(study: StudyOutputs) -> tuple[str, str]:
    """Claim 3, clustered by configuration: a permutation test over which configurations are metric-only."""
    zero = study.zeroed("test").any(-1)  # (runs,)
    configs = study.configs
    rate = np.array([np.mean([zero[study.row[(c, s)]] for s in study.seeds_of(c)]) for c in configs])
    only = np.array([c[1] in METRIC_ONLY for c in configs])
    observed = rate[only].mean() - rate[~only].mean()
    # every way of calling len(only) of the configurations "metric-only": the exact permutation p
    stats = [
        rate[list(idx)].mean() - np.delete(rate, list(idx)).mean()
        for idx in itertools.combinations(range(len(configs)), int(only.sum()))
    ]
    p = float(np.mean(np.array(stats) >= observed - 1e-12))
    detail = ", ".join(f"{c[0]}/{c[1]} {r:.0%}" for c, r, o in zip(configs, rate, only) if o)
    others = f"{rate[~only].mean():.0%} on average over the {int((~only).sum())} others"
    text = (
        f"share of seeds with a class F1 of 0 on test: metric-only {detail}; {others}; exact permutation test over "
        f"configurations (C({len(configs)}, {int(only.sum())}) = {len(stats)} assignments), one-sided p = {p:.3f}"
    )
    return text, "reproduced" if p < 0.05 else ("not reproduced" if observed <= 0 else "inconclusive")


def pair(study: StudyOutputs, config, base, metric: str = "balanced_accuracy") -> Estimate:
    if study.folds is not None:  # folds: the cross-validated two levels (docs/method.md)
        return Grid(subset(study, [config])).estimates("test", metric)[0]
    s, g = study.scores("test", metric)
    seeds = sorted(set(study.seeds_of(config)) & set(study.seeds_of(base)))
    rc = [study.row[(config, x)] for x in seeds]
    rb = [study.row[(base, x)] for x in seeds]
    return paired_estimate(s[rc] - s[rb], g[rc] - g[rb], study.test.labels)


# the study's CE balanced accuracy and that of oversampled / class-weighted CE, on the study set whose
# setting a public set stands in for: 2D fundus for RetinaMNIST, 3D MRI for VesselMNIST3D
CE_GAINS = {
    "RetinaMNIST": ("glaucoma", 0.69, {"oversample": 0.75, "weights": 0.74}),
    "VesselMNIST3D": ("glioma", 0.55, {"oversample": 0.61, "weights": 0.59}),
}


def sampling_helps_ce(study: StudyOutputs, title: str) -> tuple[str, str]:
    """Claim 4: two pre-specified comparisons (no choice), Holm over the two, on balanced accuracy."""
    _, ce, gains = CE_GAINS[title]
    relative = {sampler: value / ce - 1 for sampler, value in gains.items()}
    base = study.scores("test", "balanced_accuracy")[0][
        [study.row[(BASE, s)] for s in study.seeds_of(BASE)]
    ].mean()
    ests = {s: pair(study, (s, "ce"), BASE) for s in relative}
    p_adj = adjust_pvalues(np.array([e.p_value for e in ests.values()]), "holm")
    parts, words = [], []
    for (sampler, est), p in zip(ests.items(), p_adj):
        v = verdict(est, p_difference=p)
        effect = relative[sampler] * base
        parts.append(f"{sampler} / ce: {fmt(est, v, p)} (the study's effect here: {effect:+.3f})")
        words.append(word(v, est, effect))
    overall = words[0] if len(set(words)) == 1 else "inconclusive"
    return "; ".join(parts), overall


def tightness(tight: pd.DataFrame, minority: int) -> tuple[str, str]:
    """Claim 5 from the committed feature-tightness table: paired over seeds (the features are not committed)."""
    t = tight[tight["class"] == minority]
    rows = []
    for sampler in ("uniform", "oversample", "weights"):
        for key in ("silhouette", "knn_purity"):
            a = t[(t.sampler == sampler) & (t.loss == "ce+mcc")].set_index("seed")[key]
            b = t[(t.sampler == sampler) & (t.loss == "ce")].set_index("seed")[key]
            seeds = sorted(set(a.index) & set(b.index))
            if len(seeds) >= 2:
                d = a[seeds].to_numpy() - b[seeds].to_numpy()
                rows.append((sampler, key, paired_estimate(d, np.zeros((len(d), 1)), np.zeros(1, int))))
    p_adj = adjust_pvalues(np.array([e.p_value for *_, e in rows]), "holm")
    verdicts = [verdict(e, p_difference=p) for (*_, e), p in zip(rows, p_adj)]
    parts = [f"{s}, {k}: {fmt(e, v, p)}" for (s, k, e), p, v in zip(rows, p_adj, verdicts)]
    text = "CE+MCC minus CE, rarest class, paired over seeds: " + "; ".join(parts)
    if rows and all(v is Verdict.BETTER for v in verdicts):
        return text, "reproduced"
    return text, "not reproduced" if Verdict.WORSE in verdicts else "inconclusive"


ABLATION = [
    ("CE+MCC vs MCC at batch 10", ("batch10", "ce+mcc"), ("batch10", "mcc")),
    ("MCC at batch 50 vs batch 10", ("batch50", "mcc"), ("batch10", "mcc")),
    ("memory at batch 10, MCC", ("batch10-memory", "mcc"), ("batch10", "mcc")),
    ("memory at batch 10, CE+MCC", ("batch10-memory", "ce+mcc"), ("batch10", "ce+mcc")),
    ("memory at batch 50, MCC", ("batch50-memory", "mcc"), ("batch50", "mcc")),
]


def _label(study: StudyOutputs, prefix: str) -> str:
    """The ablation's data-set label that a setting names ("batch10-memory" matches "batch10-memory4")."""
    labels = sorted({c[0] for c in study.configs})
    hits = [x for x in labels if x == prefix or (prefix.endswith("-memory") and x.startswith(prefix))]
    if len(hits) != 1:
        raise ValueError(f"the ablation needs one setting named like {prefix!r}, got {labels}")
    return hits[0]


def merged(studies: dict[str, StudyOutputs]) -> StudyOutputs:
    """The ablation's data sets (one per batch/memory setting, same images) as one study, label as sampler."""
    first = next(iter(studies.values()))
    runs, val, test = [], [], []
    for label, st in studies.items():
        runs += [((label, c[1]), s) for c, s in st.runs]
        val.append(st.val.preds)
        test.append(st.test.preds)
        if not np.array_equal(st.test.labels, first.test.labels):
            raise ValueError(f"{label}: the ablation's settings were not run on the same test set")
    split = type(first.test)
    return StudyOutputs(
        runs,
        split(first.val.labels, np.concatenate(val)),
        split(first.test.labels, np.concatenate(test)),
        first.num_classes,
        first.minority,
        ("batch10", "mcc"),
        first.class_names,
    )


def ablation(study: StudyOutputs) -> tuple[list[str], list[str], dict[str, tuple[Estimate, Verdict]]]:
    s = study.scores("test", "balanced_accuracy")[0]
    lines = [
        "| batch | memory | loss | balanced accuracy (mean ± std) | seeds |",
        "|---|---|---|---|---|",
    ]
    for prefix in ("batch10", "batch10-memory", "batch50", "batch50-memory"):
        label = _label(study, prefix)
        for loss in ("mcc", "ce+mcc"):
            rows = [study.row[((label, loss), x)] for x in study.seeds_of((label, loss))]
            if rows:
                batch = label.split("-")[0].removeprefix("batch")
                memory = label.split("memory")[1] if "memory" in label else "off"
                lines.append(
                    f"| {batch} | {memory} | {loss} | {s[rows].mean():.3f} ± {s[rows].std(ddof=1):.3f} | {len(rows)} |"
                )
    ests = [
        (name, pair(study, (_label(study, a[0]), a[1]), (_label(study, b[0]), b[1])))
        for name, a, b in ABLATION
    ]
    p_adj = adjust_pvalues(np.array([e.p_value for _, e in ests]), "holm")
    effects = [
        "| comparison | difference | 95% CI | p | Holm p | verdict | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    out = {}
    for (name, est), p in zip(ests, p_adj):
        low, high = est.interval(0.95)
        v = verdict(est, p_difference=p)
        out[name] = (est, v)
        effects.append(
            f"| {name} | {est.difference:+.3f} | [{low:+.3f}, {high:+.3f}] | {est.p_value:.3f} | {p:.3f} | {v} | {est.seeds} |"
        )
    return lines, effects, out


def batch_claim(effects: dict[str, tuple[Estimate, Verdict]]) -> tuple[str, str]:
    """Claim 6: at batch 10 MCC alone collapses where CE+MCC holds; with the memory MCC recovers.

    Reproduced: CE+MCC better than MCC at batch 10 AND the memory better for MCC at batch 10. Not
    reproduced: either interval excludes the study's effect (CE+MCC - MCC = +0.27 at batch 10), or
    the memory is significantly worse.
    """
    ce, v_ce = effects["CE+MCC vs MCC at batch 10"]
    mem, v_mem = effects["memory at batch 10, MCC"]
    text = f"CE+MCC - MCC at batch 10: {fmt(ce, v_ce)}; memory at batch 10 for MCC: {fmt(mem, v_mem)}"
    if v_ce is Verdict.BETTER and v_mem is Verdict.BETTER:
        return text, "reproduced"
    if ce.interval(0.95)[1] < 0.27 or v_mem is Verdict.WORSE:
        return text, "not reproduced"
    return text, "inconclusive"


def race_replay(study: StudyOutputs) -> list[str]:
    """`imbal recommend` replayed on the finished grid (seeds in order), next to the grid's own answer."""
    from imbal.study.analysis.decision import decide
    from imbal.study.race.runner import replay_study
    from imbal.study.simulation.studies import trained_part

    # the race up to the grid's own seeds (the committed studies have 5, the default limit)
    plan, rules = Plan(), Rules(max_seeds=len(study.seeds_of(study.baseline)))
    outcome = replay_study(study, plan, rules)
    trained: dict = {}
    for r in outcome.rounds:
        for c in r.alive:
            trained[c] = r.seeds
    trained[study.baseline] = outcome.rounds[-1].seeds
    race = decide(trained_part(study, trained), plan)
    grid = decide(study, plan)
    total = len(study.configs) * rules.max_seeds

    def answer(d) -> str:
        conf = d.confirmation
        alt = f"{d.alternative[0]} / {d.alternative[1]}" if d.alternative else "none"
        rec = f"{d.recommendation[0]} / {d.recommendation[1]}" if d.recommendation else "undecided"
        return f"alternative {alt}, test verdict {conf.verdict if conf else '-'}, recommendation {rec}"

    return [
        "| | runs | choice on validation | after the test |",
        "|---|---|---|---|",
        f"| race (replayed, seeds in order) | {outcome.runs} of {total} ({outcome.runs / total:.0%}) | "
        f"{outcome.choice[0]} / {outcome.choice[1]} ({outcome.reason}) | {answer(race)} |",
        f"| full grid | {total} | - | {answer(grid)} |",
    ]


def repeat_race_first_round(study: StudyOutputs, max_repeats: int = 3) -> list[str]:
    """What `imbal recommend` on a cv study (``max_repeats`` repeats at most) decides after its first repeat,
    replayed on a one-repeat study: the configurations it keeps training and those it drops."""
    from imbal.study.race.repeats import fold_evidence
    from imbal.study.race.rules import progress

    plan = Plan()
    rules = Rules(plan, min_seeds=1, max_seeds=max_repeats, folds=study.folds.k)
    state = progress(study.configs, study.baseline, rules, fold_evidence(study, plan))
    first = state.rounds[0]
    k, total = study.folds.k, len(study.configs) * max_repeats * study.folds.k
    # the whole race when no further round drops: the survivors (and the baseline) train every repeat
    later = (len(state.alive) + (study.baseline not in state.alive)) * (max_repeats - 1) * k
    dropped = ", ".join(
        f"{c[0]} / {c[1]} ({d:+.3f}, p {p:.1g})"
        for c, (d, p) in sorted(first.dropped.items(), key=lambda x: x[1][0])
    )
    return [
        f"The race over repeats (imbal recommend on this cv study with {max_repeats} repeats at most) replayed on "
        f"its first repeat, at round level {rules.round_alpha(1):.3f}: leader {first.leader[0]} / {first.leader[1]}; "
        f"it keeps {len(state.alive)} of {len(study.configs)} configurations"
        + (
            f" and drops {len(first.dropped)}: {dropped} (validation difference to the rival that beats it most)."
            if first.dropped
            else " and drops none."
        )
        + f" Without further drops the race trains {len(study.configs) * k + later} of the {total} runs of "
        f"{len(study.configs)} configurations x {max_repeats} repeats x {k} folds "
        f"({(len(study.configs) * k + later) / total:.0%}).",
    ]


CLAIMS = [
    ("1. best CE+metric vs CE-uniform, balanced accuracy", "up to +12% relative"),
    ("2. rarest class F1, best CE+metric vs CE-uniform", "up to +51% relative"),
    ("3. metric-only losses are unstable", "they can zero out a class"),
    (
        "4. oversampling and class weights help CE",
        "CE 0.69 -> 0.75 / 0.74 (glaucoma), 0.55 -> 0.61 / 0.59 (glioma)",
    ),
    ("5. rarest class clusters more tightly with CE+MCC", "seen in t-SNE"),
    (
        "6. batch 10: MCC alone collapses, CE+MCC holds; the memory recovers MCC (imbal's addition)",
        "MCC 0.33 vs CE+MCC 0.60 at batch 10",
    ),
]
# (title, study folder, ablation folder) under docs/reproduction
DATASETS = [("RetinaMNIST", "study", "batch_ablation"), ("VesselMNIST3D", "vessel", "vessel_ablation")]
# (title, cross-validated study folder): the same 16 configurations, 5 folds over every labelled image
CV_DATASETS = [("RetinaMNIST", "retina_cv"), ("VesselMNIST3D", "vessel_cv")]


def dataset_claims(
    study_dir: Path, ablation_dir: Path, title: str, data_root: Path | None = None
) -> tuple[list[tuple[str, str]], list[str]]:
    """The six claims on one data set (``title``, a key of CE_GAINS): measured text and word, detail lines."""
    studies = load_predictions(study_dir, DATA[title], data_root)
    label, study = next(iter(studies.items()))
    tight = pd.read_csv(study_dir / "tables" / f"{label}_feature_tightness.csv")
    if (ablation_dir / PREDICTIONS).is_file():
        table, effects, by_name = ablation(merged(load_predictions(ablation_dir, DATA[title], data_root)))
        batch = batch_claim(by_name)
    else:  # the study is published before its ablation has finished
        table, effects = ["(not published yet)"], ["(not published yet)"]
        batch = (f"the batch-size ablation ({ablation_dir.name}) is not published yet", "pending")
    measured = [
        best_ce_metric(study, "balanced_accuracy", 0.12),
        best_ce_metric(study, "minority_f1", 0.51),
        instability(study),
        sampling_helps_ce(study, title),
        tightness(tight, study.minority),
        batch,
    ]
    seeds = len(study.seeds_of(BASE))
    names = study.class_names or [str(k) for k in range(study.num_classes)]
    detail = [
        f"{seeds} seeds per configuration, test n = {len(study.test.labels)} (rarest class {names[study.minority]!r}: "
        f"n = {int((study.test.labels == study.minority).sum())})",
        "",
        "| claim | measured here | verdict |",
        "|---|---|---|",
        *[f"| {c} | {m} | **{w}** |" for (c, _), (m, w) in zip(CLAIMS, measured)],
        "",
        "Batch size and soft-count memory (balanced accuracy, test):",
        "",
        *table,
        "",
        "Paired over seeds and test images, Holm over these comparisons:",
        "",
        *effects,
        "",
        "The race on the same runs (imbal recommend, replayed without training):",
        "",
        *race_replay(study),
        "",
    ]
    return measured, detail


def cv_claims(
    study_dir: Path, title: str, data_root: Path | None = None
) -> tuple[list[tuple[str, str]], list[str]]:
    """Claims 1-4 on a cross-validated study (the same rules; folds instead of seeds); 5-6 are not part of it."""
    studies = load_predictions(study_dir, DATA[title], data_root)
    _, study = next(iter(studies.items()))
    measured = [
        best_ce_metric(study, "balanced_accuracy", 0.12),
        best_ce_metric(study, "minority_f1", 0.51),
        instability(study),
        sampling_helps_ce(study, title),
        ("not measured (no feature maps for a cross-validated study)", "-"),
        ("not part of the cross-validated study", "-"),
    ]
    names = study.class_names or [str(k) for k in range(study.num_classes)]
    n = len(study.test.labels)
    detail = [
        f"{study.folds.k}-fold cross-validation x {study.folds.repeats} repeat(s) per configuration over every "
        f"labelled image, n = {n} (rarest class {names[study.minority]!r}: n = {int((study.test.labels == study.minority).sum())}); "
        "claim 3 counts repeats with a class F1 of 0 on the pooled test predictions",
        "",
        "| claim | measured here | verdict |",
        "|---|---|---|",
        *[f"| {c} | {m} | **{w}** |" for (c, _), (m, w) in zip(CLAIMS, measured)],
        "",
        *repeat_race_first_round(study),
        "",
    ]
    return measured, detail


def claims_markdown(root: Path, data_root: Path | None = None) -> str:
    present = [(t, root / a, root / b) for t, a, b in DATASETS if (root / a / PREDICTIONS).is_file()]
    results = [(t, *dataset_claims(a, b, t, data_root)) for t, a, b in present]
    results += [
        (f"{t}, 5-fold CV", *cv_claims(root / f, t, data_root))
        for t, f in CV_DATASETS
        if (root / f / PREDICTIONS).is_file()
    ]
    lines = [
        "# The study's claims, re-tested on public data",
        "",
        "Generated by `python docs/reproduction/claims.py` from the committed predictions (`predictions.json`) and the data sets' labels.",
        "",
        "| claim | study | " + " | ".join(t for t, *_ in results) + " |",
        "|---|---|" + "---|" * len(results),
    ]
    for i, (claim, study_effect) in enumerate(CLAIMS):
        lines.append(
            f"| {claim} | {study_effect} | " + " | ".join(f"**{m[i][1]}**" for _, m, _ in results) + " |"
        )
    for title, _, detail in results:
        lines += ["", f"## {title}", "", *detail]
    return "\n".join(lines).rstrip() + "\n"


def publish(run: Path, dest: Path) -> None:
    """Copy a finished study's report, tables and figures, and its predictions (never logits, labels,
    checkpoints or data: the claims pair the predictions with the data set's own labels)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in ("report.md", "runs.csv", "plan.json"):
        if (run / name).is_file():
            shutil.copy2(run / name, dest / name)
    for folder in ("tables", "figures"):
        shutil.copytree(run / folder, dest / folder)
    for png in run.glob("embedding_*.png"):
        shutil.copy2(png, dest / png.name)
    write_predictions(run / "outputs.npz", dest / PREDICTIONS)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--publish",
        nargs=2,
        action="append",
        metavar=("RUNS", "NAME"),
        help="copy a finished study folder to docs/reproduction/NAME first (repeatable)",
    )
    ap.add_argument("--out", default=str(HERE), help="docs/reproduction (default)")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    out = Path(args.out)
    for run, name in args.publish or []:
        publish(Path(run), out / name)
    text = claims_markdown(out)
    (out / "claims.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
