"""docs/reproduction: the committed claim tables are what the claims script makes from the committed predictions."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "reproduction"


def claims_module():
    spec = importlib.util.spec_from_file_location("claims", DOCS / "claims.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (DOCS / "study" / "outputs.npz").is_file(), reason="no committed predictions yet")
def test_claims_are_recomputed_from_the_committed_predictions():
    claims = claims_module()
    text = claims.claims_markdown(DOCS)
    assert text == (DOCS / "claims.md").read_text()


def test_no_committed_file_names_a_machine_path():
    for path in (
        list((ROOT / "docs").rglob("*.md")) + list((ROOT / "docs").rglob("*.csv")) + [ROOT / "README.md"]
    ):
        text = path.read_text()
        for marker in ("/work/", "/tmp/", "/home/", "/root/"):
            assert marker not in text, f"{path.relative_to(ROOT)} holds a machine path ({marker})"
