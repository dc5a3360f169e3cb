import pytest

from imbal.cli.main import main


def test_data_list_shows_local_files(data_root, monkeypatch, capsys):
    monkeypatch.setenv("IMBAL_DATA", str(data_root))
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("retinamnist"))
    assert "1080" in line and str(data_root) in line
    assert any(row.startswith("vesselmnist3d") and "3D" in row for row in out.splitlines())
    absent = next(row for row in out.splitlines() if row.startswith("pathmnist"))
    assert absent.rstrip().endswith("-")


def test_data_info_counts_and_ratio(data_root, monkeypatch, capsys):
    monkeypatch.setenv("IMBAL_DATA", str(data_root))
    assert main(["data", "info", "vesselmnist3d"]) == 0
    out = capsys.readouterr().out
    assert "train n=  1335  counts=[1185, 150]  imbalance=7.9:1" in out
    assert "val   n=   191" in out and "3D, 1 channel(s)" in out


def test_data_info_synthetic_is_labelled(capsys):
    assert main(["data", "info", "synthetic"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out


def test_data_fetch_finds_local_and_fails_cleanly_offline(data_root, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("IMBAL_DATA", str(data_root))
    assert main(["data", "fetch", "retinamnist"]) == 0
    assert capsys.readouterr().out.strip().endswith("retinamnist.npz")
    import urllib.error

    import imbal.data.medmnist as mm

    def offline(*a, **k):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(mm.urllib.request, "urlopen", offline)
    monkeypatch.setenv("IMBAL_CACHE", str(tmp_path))
    assert main(["data", "fetch", "breastmnist"]) == 2
    assert "could not download" in capsys.readouterr().err


def test_unknown_subcommand_arguments():
    with pytest.raises(SystemExit):
        main(["report"])
