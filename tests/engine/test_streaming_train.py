"""Training streamed from a prepared cache gives the metrics of training in memory (same seed, CPU)."""

import json

import imbal.engine.trainer as trainer
from imbal.data import synthetic
from imbal.data.cache import write_cache
from imbal.data.stream import DiskDataset, place_splits
from imbal.engine.config import load_config
from imbal.engine.trainer import train


def test_streamed_equals_in_memory(tmp_path, monkeypatch):
    splits = synthetic(n=300, size=12, class_ratios=(0.6, 0.25, 0.15), seed=3)
    cache = write_cache(splits, tmp_path / "cache", source={"kind": "synthetic", "n": 300}, settings={})
    common = dict(
        dataset=str(cache), widen_factor=0.125, epochs=2, loss="ce+mcc", sampler="oversample", quiet=True
    )
    memory = train(load_config(None, {**common, "out": str(tmp_path / "memory")}))
    seen = []

    def stream_everything(s, device, budget):
        placed = place_splits(s, device, 0)  # a budget of 0 bytes: nothing fits, everything streams
        seen.append(type(placed.train))
        return placed

    monkeypatch.setattr(trainer, "place_splits", stream_everything)
    streamed = train(load_config(None, {**common, "out": str(tmp_path / "streamed")}))
    assert seen == [DiskDataset]

    def strip(out):
        m = json.loads((out / "metrics.json").read_text())
        m.pop("timing")
        return m

    assert strip(streamed) == strip(memory)
    assert (streamed / "outputs_test.npz").read_bytes() != b""
