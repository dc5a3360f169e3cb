"""A run folder never describes another run: reused --out, changed resume, errors, threads, umask."""

import json
import os
import stat
from pathlib import Path

import pytest
import yaml

import imbal.engine.trainer as trainer
from imbal.cli.main import main
from imbal.engine.config import load_config
from imbal.engine.trainer import train
from imbal.errors import RunFolderError

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 300, "size": 12, "class_ratios": [0.6, 0.25, 0.15]}


def cfg(tmp_path, name="run", **kw):
    base = dict(
        dataset=SYN, widen_factor=0.125, epochs=1, batch_size=50, out=str(tmp_path / name), quiet=True
    )
    return load_config(None, {**base, **kw})


def test_reused_out_is_refused_unless_overwrite(tmp_path, capsys):
    first = train(cfg(tmp_path, loss="ce"))
    before = json.loads((first / "metrics.json").read_text())
    with pytest.raises(
        RunFolderError, match=r"already holds another run; --resume to continue it, --overwrite"
    ):
        train(cfg(tmp_path, loss="ce+mcc"))
    assert json.loads((first / "metrics.json").read_text()) == before  # untouched
    out = str(first)
    assert (
        main(
            [
                "train",
                "--dataset",
                json.dumps(SYN),
                "--widen-factor",
                "0.125",
                "--epochs",
                "1",
                "--loss",
                "ce+mcc",
                "--out",
                out,
                "--quiet",
            ]
        )
        == 2
    )
    assert "already holds another run" in capsys.readouterr().err
    stale = first / "evaluations" / "old_test"
    stale.mkdir(parents=True)
    (stale / "evaluation.json").write_text("{}")
    train(cfg(tmp_path, loss="ce+mcc"), overwrite=True)
    assert not stale.exists()  # cleared first, so nothing of the old run survives
    m = json.loads((first / "metrics.json").read_text())
    assert m["config"]["loss"] == "ce+mcc"


def test_overwrite_deletes_only_a_runs_own_files(tmp_path, capsys):
    """--overwrite in a folder of the user's (a config.yaml, thesis.tex, data/) deletes nothing."""
    out = tmp_path / "mine"
    (out / "data").mkdir(parents=True)
    (out / "data" / "images.npz").write_text("precious data")
    (out / "thesis.tex").write_text("precious")
    (out / "config.yaml").write_text(yaml.safe_dump({"dataset": SYN, "epochs": 1, "widen_factor": 0.125}))
    args = ["train", "--config", str(out / "config.yaml"), "--out", str(out), "--overwrite", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert (
        "holds files that are not an imbal run's (data, thesis.tex" in err and "choose another --out" in err
    )
    assert (out / "thesis.tex").read_text() == "precious" and (out / "data" / "images.npz").is_file()
    # a config.yaml alone is the user's, not a run: not deleted, not replaced
    (out / "thesis.tex").unlink()
    (out / "data" / "images.npz").unlink()
    (out / "data").rmdir()
    user_config = (out / "config.yaml").read_text()
    assert main(args) == 2
    assert "not an imbal run's (config.yaml)" in capsys.readouterr().err
    assert (out / "config.yaml").read_text() == user_config
    # a run folder with a user's note in it: refused too, the note kept
    run = train(cfg(tmp_path, "run"))
    (run / "notes.md").write_text("mine")
    with pytest.raises(RunFolderError, match=r"not an imbal run's \(notes.md\)"):
        train(cfg(tmp_path, "run", loss="ce+mcc"), overwrite=True)
    assert (run / "notes.md").read_text() == "mine"


def test_links_leaving_a_run_folder_are_never_written_through(tmp_path, capsys):
    c = cfg(tmp_path, epochs=2, keep_last=True)
    outside = tmp_path / "elsewhere.log"
    outside.write_text("not the run's\n")
    real = trainer.finish
    trainer.finish = lambda run, started: None  # as if killed before the end
    try:
        run = train(c)
    finally:
        trainer.finish = real
    (run / "train.log").unlink()
    (run / "train.log").symlink_to(outside)
    with pytest.raises(
        RunFolderError, match=r"train.log is a link to .*elsewhere.log, outside the run folder"
    ):
        train(c, resume=True)
    assert outside.read_text() == "not the run's\n"
    (run / "train.log").unlink()
    train(c, resume=True)
    (tmp_path / "ev").mkdir()
    (run / "evaluations").symlink_to(tmp_path / "ev")
    assert main(["evaluate", str(run)]) == 2
    assert "evaluations is a link to" in capsys.readouterr().err and not list((tmp_path / "ev").iterdir())
    # evaluate --out never writes over a run's own outputs
    assert main(["evaluate", str(run), "--out", str(run)]) == 2
    assert "is a run folder: its outputs and predictions would be replaced" in capsys.readouterr().err


def test_resume_with_changed_settings_is_refused(tmp_path, monkeypatch, capsys):
    c = cfg(tmp_path, epochs=2, keep_last=True)
    monkeypatch.setattr(trainer, "finish", lambda run, started: None)  # as if killed before the end
    train(c)
    monkeypatch.undo()
    with pytest.raises(RunFolderError, match=r"was trained with other settings \(loss 'ce' -> 'ce\+mcc'\)"):
        train(cfg(tmp_path, epochs=2, loss="ce+mcc"), resume=True)
    assert main(["train", "--resume", c.out, "--loss", "ce+mcc"]) == 2
    assert "loss 'ce' -> 'ce+mcc'" in capsys.readouterr().err
    # presentation keys may change; the run finishes with its own settings
    assert main(["train", "--resume", c.out, "--quiet", "--checkpoint-every", "3"]) == 0
    assert json.loads((Path(c.out) / "metrics.json").read_text())["config"]["loss"] == "ce"


def test_resume_of_a_finished_run_does_nothing(tmp_path):
    out = train(cfg(tmp_path))
    stamp = (out / "metrics.json").stat().st_mtime_ns
    assert train(cfg(tmp_path), resume=True) == out
    assert (out / "metrics.json").stat().st_mtime_ns == stamp


def test_threads_are_recorded(tmp_path):
    out = train(cfg(tmp_path, threads=1))
    assert yaml.safe_load((out / "config.yaml").read_text())["threads"] == 1
    out = train(cfg(tmp_path, "auto"))
    assert yaml.safe_load((out / "config.yaml").read_text())["threads"] >= 1


def test_run_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        out = train(cfg(tmp_path))
    finally:
        os.umask(old)
    for name in ("config.yaml", "metrics.json", "best.ckpt", "history.csv", "predictions_test.csv"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


def test_bug_shows_traceback_and_error_txt(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise ValueError("a bug deep inside training")

    monkeypatch.setattr(trainer, "train_epoch", broken)
    out = tmp_path / "bug"
    with pytest.raises(ValueError, match="a bug deep inside training"):
        main(["train", "--dataset", json.dumps(SYN), "--widen-factor", "0.125", "--out", str(out)])
    assert "Traceback" in (out / "error.txt").read_text()


def test_ctrl_c_prints_the_resume_hint(tmp_path, monkeypatch, capsys):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train_epoch", interrupted)
    out = tmp_path / "int"
    args = ["train", "--dataset", json.dumps(SYN), "--widen-factor", "0.125", "--out", str(out), "--quiet"]
    assert main(args) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"imbal: interrupted; resume with: imbal train --resume {out}"]


@pytest.mark.parametrize("bad", [b"", b"not a checkpoint"])
def test_corrupt_checkpoint_is_a_user_error(tmp_path, capsys, bad):
    out = train(cfg(tmp_path))
    (out / "best.ckpt").write_bytes(bad)
    assert main(["evaluate", str(out)]) == 2
    err = capsys.readouterr().err
    assert "best.ckpt is not a readable checkpoint" in err and len(err.strip().splitlines()) == 1


def test_unwritable_out_is_a_user_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "--dataset", json.dumps(SYN), "--out", str(blocker)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["train", "--dataset", json.dumps(SYN), "--out", str(blocker / "sub")]) == 2
    assert "cannot be created" in capsys.readouterr().err


def test_group_norm_with_any_width(tmp_path):
    out = train(cfg(tmp_path, widen_factor=0.3, norm="group"))
    assert (out / "metrics.json").is_file()


def test_memory_queue_survives_a_kill_and_resume(tmp_path, monkeypatch):
    common = dict(loss="mcc", metric_memory=3, epochs=3, checkpoint_every=1, batch_size=20)
    ref = train(cfg(tmp_path, "ref", **common))
    real = trainer.validate_and_record

    def killed_in_epoch_two(run, epoch, *a):
        if epoch == 1:
            raise KeyboardInterrupt  # after epoch 1's last.ckpt, before epoch 2 is recorded
        return real(run, epoch, *a)

    monkeypatch.setattr(trainer, "validate_and_record", killed_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(cfg(tmp_path, "killed", **common))
    monkeypatch.undo()
    import shutil

    import torch

    last = torch.load(tmp_path / "killed" / "last.ckpt", weights_only=True)
    assert last["state"]["epoch"] == 1 and last["loss"]["terms.0.memory_counts"].abs().sum() > 0
    # guard: the same resume with an emptied queue is a different run, so the check below can fail
    shutil.copytree(tmp_path / "killed", tmp_path / "forgot")
    last["loss"]["terms.0.memory_counts"].zero_()
    torch.save(last, tmp_path / "forgot" / "last.ckpt")
    (tmp_path / "forgot" / "config.yaml").write_text(
        (tmp_path / "forgot" / "config.yaml")
        .read_text()
        .replace(str(tmp_path / "killed"), str(tmp_path / "forgot"))
    )
    forgot = train(cfg(tmp_path, "forgot", **common), resume=True)
    out = train(cfg(tmp_path, "killed", **common), resume=True)

    def strip(path):
        m = json.loads((path / "metrics.json").read_text())
        m.pop("timing")
        return m

    assert strip(out) == strip(ref)
    assert strip(forgot)["val"] != strip(ref)["val"]


def test_train_leaves_the_thread_count_as_it_found_it(tmp_path):
    import torch

    before = torch.get_num_threads()
    train(cfg(tmp_path, threads=1))
    assert torch.get_num_threads() == before


def test_a_failed_data_load_leaves_out_untouched(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--dataset", str(tmp_path / "missing.npz"), "--out", str(out)]) == 2
    assert not out.exists()  # a fixed rerun into the same --out is not refused as "another run"


def test_a_stored_config_says_whether_and_which_fold_it_trained():
    from imbal.engine import run_dir

    official = {"seed": 2, "cv_folds": 0, "cv_fold": 0}
    assert not run_dir.is_fold_run(official) and run_dir.fold_of(official) is None
    fold = {"seed": 2, "cv_folds": 5, "cv_fold": 3}
    assert run_dir.is_fold_run(fold) and run_dir.fold_of(fold) == 3
    assert run_dir.fold_of({"cv_folds": 5}) == 0  # a missing cv_fold reads as the config default, fold 0
