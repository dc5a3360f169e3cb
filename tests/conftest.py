import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path | None:
    """The real MedMNIST files: ``$IMBAL_DATA`` (CI sets ../shared/data) or the sibling shared/ folder."""
    env = os.environ.get("IMBAL_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if (cand / "retinamnist").exists() or (cand / "retinamnist.npz").exists():
            return cand.resolve()
    return None


@pytest.fixture
def data_root() -> Path:
    root = shared_data_root()
    if root is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have ../shared/data with the MedMNIST files")
        pytest.skip("real MedMNIST files not available (set IMBAL_DATA)")
    return root


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
