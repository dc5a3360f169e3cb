"""A tiny real grid: tables equal the runs' own metrics, resume, shards, failures, report in a browser."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from imbal.cli.main import main
from imbal.study.report.build import make_report
from imbal.study.run.grid import parse_shard, run_grid, shard_cells
from imbal.study.run.spec import load_study

TRAIN = {"dataset": "retinamnist", "widen_factor": 0.125, "epochs": 1, "train_subset": 150}
GRID = [{"samplers": ["uniform", "oversample"], "losses": ["ce", "ce+mcc"]}]


def study_file(tmp_path, train=TRAIN, grid=GRID, seeds=(0, 1), datasets=None):
    data = {"train": train, "grid": grid, "seeds": list(seeds)}
    if datasets:
        data["datasets"] = datasets
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def grid_dir(tmp_path_factory, module_data_root):
    tmp = tmp_path_factory.mktemp("grid")
    # the module's tests re-run this grid, so IMBAL_DATA stays set for the module, then is restored
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMBAL_DATA", str(module_data_root))
        status = run_grid(load_study(study_file(tmp)), tmp / "study", log=lambda *_: None)
        assert len(status["done"]) == 8 and not status["failed"]
        yield tmp / "study"


@pytest.fixture(scope="module")
def module_data_root():
    from tests.conftest import shared_data_root

    root = shared_data_root()
    if root is None:
        pytest.skip("real MedMNIST files not available")
    return root


@pytest.mark.slow
def test_tables_equal_the_runs_metrics(grid_dir):
    make_report(grid_dir)
    table = pd.read_csv(grid_dir / "tables" / "retinamnist_balanced_accuracy.csv", header=[0, 1], index_col=0)
    for sampler in ("uniform", "oversample"):
        for loss in ("ce", "ce+mcc"):
            vals = [
                json.loads(
                    (
                        grid_dir / "runs" / "retinamnist" / sampler / loss / f"seed{s}" / "metrics.json"
                    ).read_text()
                )["test"]["balanced_accuracy"]
                for s in (0, 1)
            ]
            assert table.loc[sampler, ("mean", loss)] == pytest.approx(np.mean(vals))
            assert table.loc[sampler, ("std", loss)] == pytest.approx(np.std(vals, ddof=1))
            assert table.loc[sampler, ("n", loss)] == 2
    md = (grid_dir / "report.md").read_text()
    assert (
        "### Balanced accuracy" in md
        and "against the baseline" in md
        and "seed-to-seed and test-image noise" in md
    )
    vs = pd.read_csv(grid_dir / "tables" / "retinamnist_vs_baseline.csv")
    verdicts = {"better", "worse", "equivalent", "inconclusive", "not tested"}
    assert set(vs.verdict) <= verdicts and (vs.seeds == 2).all() and len(vs) == 12
    # the primary's family leaves out the confirmatory row; each secondary metric is its own family
    from statsmodels.stats.multitest import multipletests

    for metric, fam in vs.groupby("metric"):
        rows = fam[fam.role != "confirmatory"]
        assert (fam.family_size == len(rows)).all()
        assert np.allclose(rows.p_adjusted, multipletests(rows.p_value, method="holm")[1])
        assert (fam.role == "secondary").all() == (metric != "balanced_accuracy")


@pytest.mark.slow
def test_report_answers_first(grid_dir):
    make_report(grid_dir)
    md = (grid_dir / "report.md").read_text()
    # findings come first, then what was run, then the detail tables
    order = [
        md.index(h)
        for h in ("### Findings", "### What was run", "### Balanced accuracy", "### Class-wise F1")
    ]
    assert order == sorted(order)
    findings = md[md.index("### Findings") : md.index("### What was run")]
    assert "Pre-specified: primary metric balanced accuracy; equivalence margin ±0.02" in findings
    assert "| configuration | validation Balanced accuracy (mean) | screens |" in findings
    # the confirmation table appears when some configuration passed the screens (not at 1 epoch, often)
    answer = findings.split("\n\n")[1]
    confirmed = not answer.startswith(("No configuration qualifies", "Stay with uniform / ce: no other"))
    assert ("| metric | role | uniform / ce |" in findings) == confirmed
    assert "Evidence: 2 seed(s) (0, 1) per configuration, test n = 400 (rarest class '4': n = 20)" in findings
    assert "How the choice was made, on the validation split" in findings
    assert "corrected by Holm (family-wise error 5%)" in md
    context = md[md.index("### What was run") : md.index("### A free baseline")]
    assert "| widen_factor | 0.125 |" in context and "| epochs | 1 |" in context
    assert "(minority)" in context and "| train_subset | 150 |" in context
    assert "majority class scores accuracy 0.435 and balanced accuracy 0.200 (chance)" in md
    assert "mean ± std over seeds" in md
    post = pd.read_csv(grid_dir / "tables" / "retinamnist_posthoc.csv")
    assert len(post) == 8 and (post.tau >= 0).all()
    assert "BA post hoc" in md and "Feature space of the rarest class" in md
    # the correction can be switched to Benjamini-Hochberg
    make_report(grid_dir, correction="bh")
    assert "Benjamini-Hochberg" in (grid_dir / "report.md").read_text()


@pytest.mark.slow
def test_deleted_cell_is_the_only_one_rerun(grid_dir):
    victim = grid_dir / "runs" / "retinamnist" / "oversample" / "ce" / "seed1"
    before = json.loads(victim.joinpath("metrics.json").read_text())
    shutil.rmtree(victim)
    spec = load_study(study_file(grid_dir.parent))
    status = run_grid(spec, grid_dir, log=lambda *_: None)
    assert status["done"] == ["retinamnist/oversample/ce/seed1"] and len(status["skipped"]) == 7
    after = json.loads(victim.joinpath("metrics.json").read_text())
    assert after["test"] == before["test"]  # same seed, same result


@pytest.mark.slow
def test_killed_cell_is_resumed_and_stale_lock_taken_over(grid_dir):
    run = grid_dir / "runs" / "retinamnist" / "uniform" / "ce+mcc" / "seed0"
    (run / "metrics.json").unlink()  # as if killed before the final write
    (run / "run.lock").write_text(f"{os.uname().nodename} 999999")  # a dead process's lock
    status = run_grid(load_study(study_file(grid_dir.parent)), grid_dir, log=lambda *_: None)
    assert status["done"] == ["retinamnist/uniform/ce+mcc/seed0"]
    assert (run / "metrics.json").is_file() and not (run / "run.lock").exists()


@pytest.mark.slow
def test_browser_renders_report(grid_dir, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("CI must provide Debian's chromium (see .ci/run)")
        pytest.skip("chromium not installed")
    make_report(grid_dir)
    page = grid_dir / "report.html"
    flags = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'p'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    shot = tmp_path / "shot.png"
    res = subprocess.run(
        [*flags, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.is_file(), res.stderr[-2000:]
    console = [line for line in res.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10, "screenshot is blank"
    dom = subprocess.run(
        [*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    assert dom.count("<table>") >= 10 and dom.count("<img") >= 7
    assert "data:image/png;base64," in dom and "src='http" not in dom and 'src="http' not in dom
    # every embedded figure decodes to a real picture
    import base64
    import io
    import re

    for blob in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page.read_text()):
        img = Image.open(io.BytesIO(base64.b64decode(blob)))
        assert img.size[0] > 100 and np.asarray(img.convert("L")).std() > 5


def test_shards_partition_the_grid(tmp_path):
    spec = load_study(study_file(tmp_path, seeds=(0, 1, 2)))
    cells = spec.cells()
    assert len(cells) == 12
    parts = [shard_cells(cells, parse_shard(f"{i}/5")) for i in range(5)]
    keys = [c.key for p in parts for c in p]
    assert sorted(keys) == sorted(c.key for c in cells) and len(set(keys)) == 12
    with pytest.raises(ValueError, match=r"needs 0 <= i < n, got '5/5'"):
        parse_shard("5/5")
    with pytest.raises(ValueError, match="must look like i/n"):
        parse_shard("first")


SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 300, "size": 12, "class_ratios": [0.7, 0.3]}


def test_shards_into_one_folder_and_failures_recorded(tmp_path):
    train = {"dataset": SYN, "widen_factor": 0.125, "epochs": 1}
    grid = [{"samplers": ["uniform"], "losses": ["ce", "mcc"]}]
    path = study_file(tmp_path, train, grid, seeds=(0,), datasets=[{**SYN, "label": "syn"}, "missing.npz"])
    spec = load_study(path)
    statuses = [run_grid(spec, tmp_path / "s", shard=(i, 2), log=lambda *_: None) for i in range(2)]
    done = sorted(k for s in statuses for k in s["done"])
    failed = sorted(k for s in statuses for k in s["failed"])
    assert done == ["syn/uniform/ce/seed0", "syn/uniform/mcc/seed0"]
    assert failed == ["missing/uniform/ce/seed0", "missing/uniform/mcc/seed0"]
    err = (tmp_path / "s" / "runs" / "missing" / "uniform" / "ce" / "seed0" / "error.txt").read_text()
    assert "no npz file at missing.npz" in err
    # the report covers what finished and names what failed
    make_report(tmp_path / "s")
    md = (tmp_path / "s" / "report.md").read_text()
    assert "2 run(s) failed" in md and "## syn" in md
    # one seed: only the image level is left, and the report says so wherever a verdict appears
    vs = pd.read_csv(tmp_path / "s" / "tables" / "syn_vs_baseline.csv")
    assert (vs.seeds == 1).all() and (vs.n == 60).all() and vs.seed_sd.isna().all()
    assert "test images only, 1 seed" in md or not set(vs.verdict) & {"better", "worse", "equivalent"}
    assert "no verdict here is firm" in md
    assert "run at least 3 seeds" in md and "one seed per configuration (no spread to show)" in md
    assert "mean ± std" not in md


@pytest.mark.slow
def test_parallel_jobs_cli_and_embed(tmp_path, capsys):
    train = {"dataset": SYN, "widen_factor": 0.125, "epochs": 1}
    grid = [{"samplers": ["uniform", "oversample"], "losses": ["ce", "ce+mcc"]}]
    path = study_file(tmp_path, train, grid, seeds=(0,))
    assert main(["grid", "--config", str(path), "--out", str(tmp_path / "s"), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count(" done in ") == 4 and "ETA" in out
    assert main(["embed", str(tmp_path / "s"), "--best-worst", "1"]) == 0
    png = tmp_path / "s" / "embedding_synthetic.png"
    assert "ETA" in out
    assert png.is_file()
    assert main(["report", str(tmp_path / "s")]) == 0
    assert "Feature space" in (tmp_path / "s" / "report.md").read_text()
    try:
        import umap  # noqa: F401

        expected = 0
    except ImportError:
        expected = 2
    assert main(["embed", str(tmp_path / "s"), "--method", "umap", "--best-worst", "1"]) == expected
    if expected == 2:
        assert "needs the umap-learn package" in capsys.readouterr().err
    run = next((tmp_path / "s" / "runs").glob("*/*/*/seed0"))
    assert (
        main(["embed", str(run), "--out", str(tmp_path / "one.png")]) == 0
        and (tmp_path / "one.png").is_file()
    )


def test_demo_module_importable():
    res = subprocess.run([sys.executable, "-m", "imbal.study.demo", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "--epochs" in res.stdout


@pytest.mark.slow
def test_report_shows_calibration_and_the_kappa_of_ordinal_grades(grid_dir):
    make_report(grid_dir)
    md = (grid_dir / "report.md").read_text()
    # RetinaMNIST's grades are ordinal: the kappa gets its table; ECE and Brier are in the calibration section
    assert "### Quadratic weighted kappa (ordinal grades)" in md
    assert "### Calibration of the probabilities" in md and "15 equal-width confidence bins" in md
    assert "### Expected calibration error" not in md  # lower is better: not in a bold-the-maximum table
    cal = pd.read_csv(grid_dir / "tables" / "retinamnist_calibration.csv")
    assert len(cal) == 8 and (cal.temperature > 0).all() and cal.ece.between(0, 1).all()
    assert (grid_dir / "figures" / "retinamnist_reliability.png").is_file()
    runs = pd.read_csv(grid_dir / "runs.csv")
    assert runs.qwk.notna().all() and runs.ece.notna().all()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "nan logits"])
def test_a_damaged_outputs_file_is_one_line_and_writes_nothing(grid_dir, tmp_path, capsys, damage):
    copy = tmp_path / "study"
    shutil.copytree(grid_dir, copy)
    for name in ("runs.csv", "report.md", "outputs.npz"):
        (copy / name).unlink(missing_ok=True)
    target = sorted(copy.glob("runs/*/*/*/seed1"))[-1] / "outputs_test.npz"
    if damage == "truncated":
        target.write_bytes(target.read_bytes()[:100])
    else:
        with np.load(target) as z:
            arrays = dict(z)
        arrays["logits"][0, 0] = np.nan
        np.savez(target, **arrays)
    assert main(["report", str(copy)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and err.count("\n") == 1, err
    assert "damaged" in err
    assert not any((copy / name).exists() for name in ("runs.csv", "report.md", "outputs.npz"))
