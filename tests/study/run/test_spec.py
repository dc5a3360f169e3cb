"""A study file read into cells (run/spec.py): layered settings, cells, seeds, checks up front, stored configs."""

from pathlib import Path

import pytest
import yaml

from imbal.engine import run_dir as rd
from imbal.errors import ConfigError
from imbal.study.run.spec import PAPER_GRID, Cell, load_study

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 200, "size": 12, "class_ratios": [0.7, 0.3]}
TRAIN = {"dataset": SYN, "widen_factor": 0.125, "epochs": 1}
GRID = [{"samplers": ["uniform"], "losses": ["ce"]}]


def study(tmp_path, **kw):
    data = {"train": TRAIN, "grid": GRID, "seeds": [0], **kw}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_settings_are_layered_study_config_train_entry_config_entry_train_overrides(tmp_path):
    # each key is set by the layers up to one: the last of them must win
    write(
        tmp_path / "s" / "base.yaml",
        {"epochs": 3, "lr": 0.01, "batch_size": 16, "weight_decay": 0.001, "widen_factor": 0.5},
    )
    write(tmp_path / "s" / "entry.yaml", {"batch_size": 64, "weight_decay": 0.003, "widen_factor": 0.75})
    data = {
        "config": "base.yaml",  # relative to the study file's folder
        "train": {"dataset": SYN, "lr": 0.02, "batch_size": 32, "weight_decay": 0.002, "widen_factor": 0.6},
        "datasets": [
            {
                "config": "entry.yaml",
                "train": {"weight_decay": 0.004, "widen_factor": 0.8},
                "dataset": SYN,
                "label": "own",
            },
            {"dataset": {**SYN, "n": 150}, "label": "shared"},
        ],
        "grid": GRID,
    }
    path = write(tmp_path / "s" / "study.yaml", data)
    spec = load_study(path, overrides={"widen_factor": 0.25})
    own, shared = spec.entries["own"], spec.entries["shared"]
    assert (own["epochs"], own["lr"], own["batch_size"], own["weight_decay"], own["widen_factor"]) == (
        3,
        0.02,
        64,
        0.004,
        0.25,
    )
    # an entry without settings of its own has the study's
    assert (shared["epochs"], shared["lr"], shared["batch_size"], shared["weight_decay"]) == (
        3,
        0.02,
        32,
        0.002,
    )
    assert shared["widen_factor"] == 0.25 and shared["dataset"]["n"] == 150
    # without overrides the entry's own train wins
    assert load_study(path).entries["own"]["widen_factor"] == 0.8


def test_no_datasets_means_the_shared_data_set_and_no_grid_the_papers(tmp_path):
    spec = load_study(write(tmp_path / "study.yaml", {"train": TRAIN}))
    assert list(spec.entries) == ["synthetic"] and spec.entries["synthetic"]["dataset"] == SYN
    assert spec.grid == PAPER_GRID and not spec.grid_given
    assert len(spec.cells()) == 15  # the paper's 15 configurations, one seed
    assert spec.seeds == [0] and not spec.seeds_given and spec.budget == {}


def test_a_configuration_listed_in_two_blocks_is_one_cell(tmp_path):
    grid = [
        {"samplers": ["uniform"], "losses": ["ce", "mcc"]},
        {"samplers": ["uniform", "oversample"], "losses": ["ce"]},
    ]
    spec = load_study(study(tmp_path, grid=grid, seeds=2))
    assert [c.key for c in spec.cells()] == [
        "synthetic/uniform/ce/seed0",
        "synthetic/uniform/ce/seed1",
        "synthetic/uniform/mcc/seed0",
        "synthetic/uniform/mcc/seed1",
        "synthetic/oversample/ce/seed0",
        "synthetic/oversample/ce/seed1",
    ]


@pytest.mark.parametrize(("seeds", "expected"), [(3, [0, 1, 2]), ([4, 2], [4, 2]), (1, [0])])
def test_seeds_are_a_count_or_a_list(tmp_path, seeds, expected):
    spec = load_study(study(tmp_path, seeds=seeds))
    assert spec.seeds == expected and spec.seeds_given
    assert [c.seed for c in spec.cells()] == expected


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        (0, r"seeds in .* must be >= 1, got 0"),
        (-2, r"seeds in .* must be >= 1, got -2"),
        (True, r"seeds in .* must be a count \(e.g. 5\) or a list of ints, got True"),
        (2.5, r"seeds in .* must be a count \(e.g. 5\) or a list of ints, got 2.5"),
        ([], r"seeds in .* must be a non-empty list of ints, got \[\]"),
        ([1, "a"], r"seeds in .* must be a non-empty list of ints, got \[1, 'a'\]"),
        ([0, True], r"seeds in .* must be a non-empty list of ints"),
        ([3, 1, 3], r"seeds in .* repeat a seed: \[3, 1, 3\]"),
    ],
)
def test_bad_seeds_are_refused(tmp_path, seeds, message):
    with pytest.raises(ConfigError, match=message):
        load_study(study(tmp_path, seeds=seeds))


def test_two_labels_that_name_one_folder_are_refused(tmp_path):
    # labels become folder names: "a/b" and "axb" would share one
    datasets = [{"dataset": SYN, "label": "a/b"}, {"dataset": SYN, "label": "axb"}]
    with pytest.raises(ConfigError, match=r"datasets\[1\] of .* has the label 'axb' of an earlier entry"):
        load_study(study(tmp_path, datasets=datasets))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"budget": [60]}, r"budget in .* must be a mapping like \{max_runs: 60, max_seeds: 5\}, got \[60\]"),
        ({"train": [1]}, r"'train' of .* must be a mapping of config keys, got \[1\]"),
        ({"datasets": "retinamnist"}, r"datasets in .* must be a list, got 'retinamnist'"),
        ({"grid": [{"samplers": ["uniform"]}]}, r"each grid block needs exactly 'samplers' and 'losses'"),
        ({"grid": [{"samplers": [], "losses": ["ce"]}]}, r"grid block samplers must be a non-empty list"),
    ],
)
def test_malformed_study_files_are_one_line(tmp_path, data, message):
    with pytest.raises(ConfigError, match=message):
        load_study(study(tmp_path, **data))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"grid": []}, "grid in .* must be a non-empty list"),
        ({"seeds": "abc"}, "seeds in .* must be a count \\(e.g. 5\\) or a list of ints, got 'abc'"),
        ({"seeds": [0, 0]}, "repeat a seed"),
        ({"grid": [{"samplers": ["uniform"], "losses": ["ce+dice"]}]}, "unknown loss term 'dice'"),
        ({"grid": [{"samplers": ["smote"], "losses": ["ce"]}]}, "sampler must be one of"),
        (
            {"datasets": ["retinamnist", {"dataset": "retinamnist", "train": {"epochs": 3}}]},
            "has the label 'retinamnist' of an earlier entry",
        ),
        ({"datasets": [{"config": "nope.yaml"}]}, "train config of datasets\\[0\\] .* does not exist"),
        (
            {"datasets": [{"dataset": "retinamnist", "epochs": 3}]},
            "datasets\\[0\\] has unknown keys \\['epochs'\\]",
        ),
        ({"train": {"lr": -1}}, "lr must be a finite number > 0"),
        ({"gird": []}, "unknown study keys \\['gird'\\]"),
    ],
)
def test_study_file_checked_up_front(tmp_path, data, message):
    with pytest.raises(ConfigError, match=message):
        load_study(study(tmp_path, **data))


def test_entries_differing_only_in_settings_are_never_merged(tmp_path):
    data = {
        "datasets": [{"dataset": SYN, "label": "a"}, {"dataset": SYN, "label": "b", "train": {"epochs": 2}}]
    }
    spec = load_study(study(tmp_path, **data))
    cells = spec.cells()
    assert [c.key for c in cells] == ["a/uniform/ce/seed0", "b/uniform/ce/seed0"]
    assert spec.config_for(cells[1], tmp_path).epochs == 2 and spec.config_for(cells[0], tmp_path).epochs == 1


def test_config_for_sets_the_cells_sampler_loss_seed_and_folder(tmp_path):
    spec = load_study(study(tmp_path, train={**TRAIN, "lr": 0.02}))
    cell = Cell("synthetic", "oversample", "ce+mcc", 7, spec.entries["synthetic"])
    cfg = spec.config_for(cell, tmp_path / "s")
    assert (cfg.sampler, cfg.loss, cfg.seed) == ("oversample", "ce+mcc", 7)
    assert cfg.out == str(tmp_path / "s" / "runs" / "synthetic" / "oversample" / "ce+mcc" / "seed7")
    assert cfg.out == str(rd.cell_dir(tmp_path / "s", "synthetic", "oversample", "ce+mcc", 7))
    assert cfg.quiet is True and cfg.lr == 0.02 and cfg.epochs == 1 and cfg.dataset == SYN
    assert spec.config_for(cell, tmp_path / "s", threads=3).threads == 3  # extra keys on top
    assert cell.settings["lr"] == 0.02 and "sampler" not in cell.settings  # the entry is not changed


def test_changed_settings_names_the_keys_a_stored_config_differs_in(tmp_path):
    spec = load_study(study(tmp_path, train={**TRAIN, "lr": 0.02}))
    (cell,) = spec.cells()
    root = tmp_path / "s"
    stored = spec.config_for(cell, root).to_dict()
    assert spec.changed_settings(cell, stored, root) == []
    assert spec.changed_settings(cell, {**stored, "lr": 0.5, "epochs": 9}, root) == ["epochs", "lr"]
    # where and how loudly it ran, and its thread count (a resume keeps its own), change nothing
    moved = {**stored, "out": str(tmp_path / "elsewhere"), "quiet": False, "threads": 5}
    assert spec.changed_settings(cell, moved, root) == []
    # a key the stored config lacks (added after it was trained) is not named, though its default
    # (lr 0.001) differs from the study's 0.02
    older = {k: v for k, v in stored.items() if k != "lr"}
    assert spec.changed_settings(cell, older, root) == []
    assert spec.changed_settings(cell, {**older, "epochs": 9}, root) == ["epochs"]


def _cv_study(tmp_path, cv, **kw):
    data = {"train": TRAIN, "grid": [{"samplers": ["uniform"], "losses": ["ce", "ce+f1"]}], "cv": cv, **kw}
    return write(tmp_path / "cv.yaml", data)


def test_a_cv_study_has_a_cell_per_configuration_repeat_and_fold(tmp_path):
    spec = load_study(_cv_study(tmp_path, {"folds": 4, "repeats": 2}))
    cells = spec.cells()
    assert spec.folds == 4 and spec.seeds == [0, 1] and len(cells) == 2 * 2 * 4
    cell = cells[1]
    assert [(c.seed, c.fold) for c in cells[:5]] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0)]
    assert (cell.seed, cell.fold) == (0, 1) and cell.key.endswith("/seed0/fold1")
    assert cell.run_dir(tmp_path).name == "seed0-fold1"
    cfg = spec.config_for(cell, tmp_path)
    # repeat r is partition r, trained with seed r; every configuration meets the same folds
    assert (cfg.cv_folds, cfg.cv_fold, cfg.cv_repeat, cfg.seed) == (4, 1, 0, 0)
    assert cfg.cv_over == ["train", "val", "test"]
    assert rd.cell_label(cell.run_dir(tmp_path)) == cell.dataset


@pytest.mark.parametrize(
    ("cv", "extra", "message"),
    [
        (
            {"folds": 2},
            {},
            r"cv.folds in .* must be an integer >= 3 \(a test, a validation, a training fold\), got 2",
        ),
        ({"repeats": 2}, {}, r"cv in .* must be a mapping like \{folds: 5, repeats: 1\}"),
        (
            {"folds": 5, "group": "patient"},
            {},
            r"cv in .* has unknown keys \['group'\]; expected folds, repeats, over",
        ),
        ({"folds": 5, "repeats": 0}, {}, r"cv.repeats in .* must be an integer >= 1, got 0"),
        (
            {"folds": 5},
            {"seeds": 3},
            r"has both seeds and cv: a cross-validated study's seeds are its repeats",
        ),
        (
            {"folds": 5, "over": ["val"]},
            {},
            r"cv_over must be distinct names of train, val, test including train",
        ),
    ],
)
def test_bad_cv_blocks_are_refused(tmp_path, cv, extra, message):
    path = _cv_study(tmp_path, cv, **extra)
    if "seeds" not in extra:
        data = yaml.safe_load(path.read_text())
        data.pop("seeds", None)
        path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message):
        load_study(path)


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"cv_folds": 5}, r"sets cv_folds without a cv: block; a cross-validated study is `cv: \{folds: 5"),
        ({"cv_fold": 2}, r"sets \['cv_fold'\]; the grid sets each cell's fold and repeat"),
    ],
)
def test_cv_keys_outside_a_cv_block_are_refused(tmp_path, train, message):
    path = write(tmp_path / "s.yaml", {"train": {**TRAIN, **train}, "grid": GRID, "seeds": [0, 1]})
    with pytest.raises(ConfigError, match=message):
        load_study(path)
