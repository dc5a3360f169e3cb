import subprocess
import sys

import pytest

from imbal.cli.main import main


def test_every_command_is_there(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("train", "evaluate", "grid", "report", "embed", "data"):
        assert cmd in out


def test_console_script_runs():
    res = subprocess.run(
        [sys.executable, "-m", "imbal.cli.main", "data", "list"], capture_output=True, text=True
    )
    assert res.returncode == 0 and "retinamnist" in res.stdout


def test_extra_arguments_rejected_outside_train(capsys):
    with pytest.raises(SystemExit):
        main(["report", "somewhere", "--epochs", "3"])
    assert "unrecognized arguments: --epochs 3" in capsys.readouterr().err
