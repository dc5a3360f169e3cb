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


@pytest.mark.parametrize("argv", [["--help"], ["data", "list"]])
def test_help_and_data_list_do_not_import_torch(argv):
    # they should start in a fraction of a second; torch alone takes 1.5-4 s to import
    code = (
        "import sys\nfrom imbal.cli.main import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "heavy = ('torch', 'numpy', 'pandas', 'lightning_fabric', 'monai')\n"
        "print('imported:', [m for m in heavy if m in sys.modules], file=sys.stderr)"
    )
    res = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert res.returncode == 0 and "imported: []" in res.stderr, res.stderr


def test_data_package_names_resolve_on_first_use():
    import imbal.data
    from imbal.data.synthetic_set import synthetic

    assert sorted(imbal.data.__all__) == sorted(imbal.data._HOMES)
    for name in imbal.data.__all__:
        assert getattr(imbal.data, name) is not None, name
    assert imbal.data.synthetic is synthetic  # the function, not a module
    with pytest.raises(AttributeError, match="module 'imbal.data' has no attribute 'nope'"):
        imbal.data.nope  # noqa: B018
