"""The loss-term table is the one home of loss names: adding a term is one table entry + its function."""

import os

import pytest
import torch

import imbal.losses.terms as terms
from imbal.engine.config import ConfigError, load_config
from imbal.losses import LOSS_TERMS, build_loss, loss_sort_key, parse_loss_name
from imbal.losses.terms import LossTerm


def toy_loss(logits, target):
    return (logits.softmax(-1) ** 2).sum(-1)  # a per-sample toy term


class Toy(torch.nn.Module):
    def forward(self, logits, target, reduction="mean"):
        loss = toy_loss(logits, target)
        return loss if reduction == "none" else loss.mean()


def test_a_new_term_is_one_table_entry(monkeypatch):
    monkeypatch.setitem(terms.LOSS_TERMS, "toy", LossTerm("toy", lambda s: Toy(), True, "a toy"))
    logits, y = torch.randn(8, 3), torch.randint(0, 3, (8,))
    loss = build_loss("ce+0.5*toy")
    expected = torch.nn.functional.cross_entropy(logits, y) + 0.5 * toy_loss(logits, y).mean()
    assert torch.allclose(loss(logits, y), expected)
    # config check, sampler rule (per-sample) and report order all follow the table
    assert load_config(None, {"loss": "toy", "sampler": "weights"}).loss == "toy"
    assert sorted(["toy", "ce", "mcc", "ce+toy"], key=loss_sort_key) == ["ce", "ce+toy", "mcc", "toy"]


def test_unknown_term_never_falls_into_another_branch():
    with pytest.raises(ValueError, match="unknown loss term 'dice' in 'ce\\+dice'"):
        parse_loss_name("ce+dice")
    with pytest.raises(ConfigError, match="unknown loss term 'dice'"):
        load_config(None, {"loss": "dice"})


def test_paper_column_order():
    names = ["mcc", "focal", "la-ce", "ce+mcc", "f1", "ce", "ce+f1"]
    assert sorted(names, key=loss_sort_key) == ["ce", "ce+f1", "ce+mcc", "f1", "focal", "mcc", "la-ce"]


def test_per_sample_comes_from_the_table():
    loss = build_loss("ce+mcc+focal")
    assert (
        loss.per_sample == [LOSS_TERMS[n].per_sample for n in ("ce", "mcc", "focal")] == [True, False, True]
    )


# A term with a parameter: the edits live in losses/terms.py only. The test applies them to a copy
# of the package and checks, in a fresh interpreter, that the config, the command line, the
# builders, the resume check and the report all know the new setting.
TOY_FIELD = '    toy_scale: float = option(1.0, "scale of the toy term", lambda v: v > 0, "must be > 0")\n'
TOY_FUNCTION = """

class _Toy(nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        loss = self.scale * (logits.softmax(-1) ** 2).sum(-1)
        return loss if reduction == "none" else loss.mean()

"""
TOY_ENTRY = '        LossTerm("toy", lambda s: _Toy(s.toy_scale), True, "a toy term", ("toy_scale",)),\n'

TOY_CHECKS = """
import contextlib, io
import pandas as pd, torch
from imbal.cli.main import main
from imbal.data import synthetic
from imbal.engine.build import loss_for
from imbal.engine.config import ConfigError, config_differences, load_config
from imbal.losses import loss_sort_key
import numpy as np
from pathlib import Path
from imbal.study.analysis.outputs import SplitOutputs, StudyOutputs
from imbal.study.analysis.plan import Plan
from imbal.study.report.data import DatasetReport, Facts
from imbal.study.report.sections.context import context_blocks
from imbal.study.report.sections.section import Section

# config: a key with its default, its type and its check
cfg = load_config(None, {"loss": "ce+0.5*toy", "toy_scale": "3"})
assert cfg.toy_scale == 3.0, cfg
try:
    load_config(None, {"loss": "toy", "toy_scale": "-1"})
    raise AssertionError("toy_scale=-1 accepted")
except ConfigError as exc:
    assert str(exc) == "toy_scale must be > 0, got -1.0", exc
# the command line: an option with its help, and the term's help names its setting
help_text = io.StringIO()
with contextlib.redirect_stdout(help_text), contextlib.suppress(SystemExit):
    main(["train", "--help"])
text = " ".join(help_text.getvalue().split())
assert "--toy-scale FLOAT, --toy_scale FLOAT scale of the toy term (default: 1.0)" in text, text
assert "toy: a toy term (toy_scale)" in text, text
# the builders: the config's value reaches the term
data = synthetic(n=60, size=8).train
loss = loss_for(cfg, data)
logits, y = torch.randn(8, data.num_classes), torch.randint(0, data.num_classes, (8,))
expected = torch.nn.functional.cross_entropy(logits, y) + 0.5 * 3.0 * (logits.softmax(-1) ** 2).sum(-1).mean()
assert torch.allclose(loss(logits, y), expected)
# the resume check: a changed setting changes what a run computes
assert config_differences({"toy_scale": 1.0}, {"toy_scale": 2.0}) == ["toy_scale"]
# the report: the loss columns' order and the settings of the compared losses
assert sorted(["toy", "mcc", "ce+toy", "ce"], key=loss_sort_key) == ["ce", "ce+toy", "mcc", "toy"]
runs = pd.DataFrame({
    "sampler": ["uniform", "uniform"], "loss": ["ce", "ce+toy"], "seed": [0, 0],
    "config": [{"toy_scale": 2.0}, {"toy_scale": 2.0}],
})
facts = Facts("syn", "", False, ["a", "b"], 1, [6, 2], [], {"train": 8, "val": 2, "test": 2})
part = SplitOutputs(np.array([0, 1]), np.zeros((2, 2), dtype=np.int64))
outputs = StudyOutputs([(("uniform", "ce"), 0), (("uniform", "ce+toy"), 0)], part, part, 2, 1)
section = Section(DatasetReport("syn", facts, runs, outputs), Plan(), None, Path("."), Path("."))
rows = context_blocks(section)[1].rows
assert ["toy_scale", "2.0"] in rows, rows
print("toy term ok")
"""


def test_a_term_with_a_parameter_is_one_file(tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    src = Path(terms.__file__).parents[1]
    copy = tmp_path / "src" / "imbal"
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / "losses" / "terms.py"
    text = path.read_text()
    anchors = ("\n\n\nLOSS_OPTIONS = ", "\n# the order of this table", "    ]\n}\n")
    assert all(text.count(a) == 1 for a in anchors), "terms.py changed its layout: update the anchors"
    text = text.replace(anchors[0], "\n" + TOY_FIELD.rstrip("\n") + anchors[0])
    text = text.replace(anchors[1], TOY_FUNCTION + anchors[1])
    text = text.replace(anchors[2], TOY_ENTRY + anchors[2])
    path.write_text(text)
    changed = [
        p.relative_to(copy).as_posix()
        for p in sorted(copy.rglob("*.py"))
        if p.read_bytes() != (src / p.relative_to(copy)).read_bytes()
    ]
    assert changed == ["losses/terms.py"]
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src"), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", TOY_CHECKS], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0 and "toy term ok" in done.stdout, done.stderr[-3000:]


def test_build_loss_takes_settings_fields_by_name():
    from imbal.losses import LossSettings

    logits, target = torch.randn(12, 5, generator=torch.Generator().manual_seed(0)), torch.arange(12) % 5
    by_name = build_loss("ce+mcc", metric_memory=2, num_classes=5)
    by_object = build_loss("ce+mcc", LossSettings(metric_memory=2, num_classes=5))
    assert torch.equal(by_name(logits, target), by_object(logits, target))
    # a field replaces that of a given settings object, the others are kept
    replaced = build_loss("focal", LossSettings(focal_gamma=0.0), focal_gamma=3.0)
    assert not torch.equal(replaced(logits, target), build_loss("focal", focal_gamma=0.0)(logits, target))
    with pytest.raises(
        TypeError, match=r"build_loss got unknown setting\(s\) \['memory'\]; LossSettings has .*metric_memory"
    ):
        build_loss("mcc", memory=4)
    with pytest.raises(ValueError, match=r"focal_gamma must be >= 0, got -1.0"):
        build_loss("focal", focal_gamma=-1.0)
