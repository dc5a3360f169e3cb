"""The shards of one study folder agree on n: a process of another n is refused while one runs."""

import os

from imbal.cli.main import main
from tests.study.race.tiny_race import finished, study


def test_shards_of_another_n_are_refused_while_one_runs(tmp_path, capsys):
    from imbal.study.run.shards import take_seat

    path = study(tmp_path / "study.yaml")  # a tiny race's study file; nothing is trained
    root = tmp_path / "r"
    root.mkdir()
    seat = take_seat(root, (0, 2))  # as if shard 0/2 were running
    try:
        for shard, shown in (("1/3", "shard 1/3"), (None, "a process without --shard")):
            args = ["recommend", "--config", str(path), "--out", str(root), "--quiet"]
            assert main([*args, *(["--shard", shard] if shard else [])]) == 2
            err = capsys.readouterr().err
            assert f"{shown} refused: {root} is being run by shard 0/2 (pid {os.getpid()}" in err, err
            assert "every process of one study uses the same n (--shard i/2)" in err
        assert main(["grid", "--config", str(path), "--out", str(root), "--shard", "0/3", "--quiet"]) == 2
        assert "shard 0/3 refused" in capsys.readouterr().err
    finally:
        seat.release()
    assert finished(root) == []
