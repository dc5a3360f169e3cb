"""``imbal embed``: 2D maps of test features, their panels, and the best/worst figure of a study."""

import json
import sys
import types

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from imbal.engine import run_dir as rd
from imbal.errors import ConfigError, MissingFileError
from imbal.study.report import embed
from imbal.study.report.figures import plt
from tests.study.report import fakes

SMALL = {"val_counts": [12, 6, 4], "test_counts": [20, 8, 5]}  # t-SNE of 33 points: fast


@pytest.fixture(autouse=True)
def _one_thread():
    """t-SNE's OpenMP threads spin against each other on a busy 2-core machine (up to 20 s a map): one thread."""
    with threadpool_limits(1):
        yield


def clusters(n=15, dims=5, seed=0):
    rng = np.random.default_rng(seed)
    x = np.vstack([rng.normal(0, 0.1, (n, dims)), rng.normal(0, 0.1, (n, dims)) + 10])
    return x.astype(np.float32), np.repeat([0, 1], n)


def test_tsne_gives_two_coordinates_per_point_and_keeps_clusters_apart():
    x, y = clusters()
    xy = embed.project(x, "tsne", seed=0)
    assert xy.shape == (30, 2) and np.isfinite(xy).all()
    # every point's nearest neighbour in the map is of its own cluster
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert (y[d.argmin(1)] == y).all()
    np.testing.assert_allclose(embed.project(x, "tsne", seed=0), xy)  # the seed fixes the map


def test_an_unknown_method_is_one_line():
    with pytest.raises(ConfigError) as err:
        embed.project(clusters()[0], "pca")
    assert str(err.value) == "method must be 'tsne' or 'umap', got 'pca'"


def test_umap_without_the_package_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap raises ImportError
    with pytest.raises(ConfigError) as err:
        embed.project(clusters()[0], "umap")
    assert "umap-learn" in str(err.value) and "\n" not in str(err.value)


def test_umap_when_installed_maps_to_two_dimensions_with_the_seed(monkeypatch):
    made = []

    class UMAP:
        def __init__(self, n_components, random_state):
            made.append((n_components, random_state))

        def fit_transform(self, x):
            return x[:, :2] * 2

    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=UMAP))
    x = clusters()[0]
    np.testing.assert_array_equal(embed.project(x, "umap", seed=7), x[:, :2] * 2)
    assert made == [(2, 7)]


@pytest.fixture
def runs(tmp_path):
    return [
        fakes.write_run(tmp_path / "study", config, 0, recall, **SMALL)
        for config, recall in fakes.PLANTED.items()
    ]


def test_a_panel_shows_every_class_with_its_test_f1_in_class_order(runs):
    fig, ax = plt.subplots()
    embed.panel(ax, runs[1], "tsne")
    m = json.loads((runs[1] / rd.METRICS_FILE).read_text())
    assert ax.get_title() == f"oversample / ce+f1 (macro F1 {m['test']['macro_f1']:.3f})"
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == [f"{c}: F1 {f1:.2f}" for c, f1 in zip(fakes.CLASS_NAMES, m["test"]["f1_per_class"])]
    # every test image is a point, the largest class drawn first (rare classes stay on top)
    sizes = [len(c.get_offsets()) for c in ax.collections]
    assert sizes == sorted(SMALL["test_counts"], reverse=True)
    plt.close(fig)


def test_embed_runs_writes_one_png_with_a_panel_per_run(runs, tmp_path, monkeypatch):
    figs = []
    real_save = embed.save
    monkeypatch.setattr(embed, "save", lambda fig, path: figs.append(fig) or real_save(fig, path))
    out = tmp_path / "maps" / "embedding.png"
    path = embed.embed_runs(runs, out, titles=["a", "b", "c"], cols=2)
    assert path == out and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    axes = figs[0].axes
    assert len(axes) == 4 and [ax.get_title() for ax in axes[:3]] == ["a", "b", "c"]
    assert not axes[3].axison  # the empty fourth cell of the 2 x 2 grid is off
    assert figs[0].get_suptitle().startswith("t-SNE of penultimate test features")


def test_a_folder_without_test_outputs_is_a_missing_file_and_nothing_is_drawn(runs, tmp_path):
    (runs[2] / rd.outputs_file("test")).unlink()
    out = tmp_path / "embedding.png"
    with pytest.raises(MissingFileError, match=rf"^{runs[2]} has no outputs_test.npz"):
        embed.embed_runs(runs, out)
    assert not out.exists()


def test_embedding_file_is_a_safe_name():
    assert embed.embedding_file("syn (epochs 2)") == "embedding_synxxepochsx2x.png"


def test_best_worst_draws_the_median_seed_of_the_best_and_the_worst_configuration(tmp_path, monkeypatch):
    data = fakes.fake_report(tmp_path / "study")
    calls = []
    monkeypatch.setattr(embed, "embed_runs", lambda *a, **kw: calls.append((a, kw)) or a[1])
    paths = embed.best_worst(tmp_path / "study", k=3, out_dir=tmp_path / "out")
    assert paths == [tmp_path / "out" / "embedding_fake.png"]
    (dirs, out, method, titles), kw = calls[0]
    assert out == paths[0] and method == "tsne"
    assert kw == {"cols": 1}  # 3 configurations: one best, one worst
    means = data.runs.groupby(["sampler", "loss"]).macro_f1.mean()
    best, worst = means.idxmax(), means.idxmin()
    assert best == fakes.BETTER
    for d, title, config, tag in zip(dirs, titles, (best, worst), ("best", "worst")):
        sel = data.runs_of(config).sort_values("macro_f1")
        median = sel.iloc[1]  # the middle of 3 seeds
        assert d == median.run_dir
        assert title == (
            f"{tag}: {config[0]} / {config[1]}, seed {median.seed}\n"
            f"macro F1 {median.macro_f1:.3f} (mean over 3 seeds {means[config]:.3f})"
        )
