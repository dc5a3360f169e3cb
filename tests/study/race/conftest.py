"""The tiny race every module of these tests reads (trained once per module that asks for it)."""

import pytest

from imbal.cli.main import main
from tests.study.race.tiny_race import study


@pytest.fixture(scope="module")
def race(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("race")
    path = study(tmp / "study.yaml")
    assert main(["recommend", "--config", str(path), "--out", str(tmp / "r"), "--quiet"]) == 0
    return tmp, path
