"""The simulation tables of docs/method.md (simulation/tables.py): their rows, and the command line's count."""

import re
from pathlib import Path

import pytest

from imbal.study.simulation import races, tables

METHOD = Path(__file__).resolve().parents[3] / "docs" / "method.md"


def doc_table(header: str) -> list[str]:
    """The lines of the table of docs/method.md that starts with ``header`` (header and rule included)."""
    lines = METHOD.read_text().splitlines()
    start = lines.index(header)
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return lines[start:end]


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip("|").split("|")]


def scenario(line: str) -> str:
    """A row's scenario with the numbers that depend on the draw (promised power, SE-scaled margins) blanked."""
    text = cells(line)[0]
    text = re.sub(r"promised [0-9.]+", "promised P", text)
    return re.sub(r"x SE \([0-9.]+\)", "x SE (M)", text)


def tables_of(text: list[str]) -> list[list[str]]:
    """The Markdown tables of ``text``, each its header, rule and rows."""
    out, current = [], []
    for line in text:
        if line.startswith("|"):
            current.append(line)
        elif current:
            out.append(current)
            current = []
    return [*out, current] if current else out


def test_report_holds_the_rows_of_the_documented_tables():
    md = tables.report(studies=12).splitlines()
    titles = [line for line in md if line.endswith("noise, 12 studies per row:")]
    assert titles == [
        "RetinaMNIST-like noise, 12 studies per row:",
        "VesselMNIST3D-like noise, 12 studies per row:",
    ]
    doc = METHOD.read_text().splitlines()
    ours, theirs = (
        tables_of(md),
        [t for t in tables_of(doc) if t[0] == "| scenario | measured | Monte Carlo SE |"],
    )
    assert len(ours) == len(theirs) == 2
    for a, b in zip(ours, theirs):
        assert [scenario(line) for line in a] == [scenario(line) for line in b]
        for line in a[2:]:
            _, measured, se = cells(line)
            if measured.count("/") == 1:  # a calibration row: published / simulated
                assert se == "-" and all(0 < float(v) < 1 for v in measured.split("/")), line
                continue
            # a mean carries its sign (4 decimals), a rate does not (3 decimals)
            assert re.fullmatch(r"[+-]0\.\d{4}|[01]\.\d{3}", measured) and 0 <= float(se) < 1, line


def test_race_report_holds_the_rows_of_the_documented_tables(monkeypatch):
    asked = []
    real_images, real_scores = races.simulate_races, races.score_races

    def few_images(pattern, count, plan, rules, calibration, seed=0):
        asked.append(count)
        return real_images(pattern, 2, plan, rules, calibration, seed=seed)

    monkeypatch.setattr(tables, "simulate_races", few_images)
    monkeypatch.setattr(
        tables, "score_races", lambda p, n, rules, seed=0: real_scores(p, 3, rules, seed=seed)
    )
    md = tables.race_report(studies=20).splitlines()
    assert asked == [20] * 3 * len(races.PATTERNS)
    doc = tables_of(METHOD.read_text().splitlines())
    ours = tables_of(md)
    assert len(ours) == 2
    for table in ours:
        (documented,) = [t for t in doc if t[0] == table[0]]
        assert [cells(line)[:2] for line in table] == [cells(line)[:2] for line in documented]
        for line in table[2:]:
            shares = [c for c in cells(line) if c.endswith("%")]
            assert shares and all(0 <= float(c[:-1]) <= 100 for c in shares), line


def count_asked(monkeypatch, argv: list[str]) -> tuple[str, int]:
    """What ``python -m imbal.study.simulation.tables ARGV`` runs: (which tables, studies per row)."""
    asked = []
    monkeypatch.setattr(tables, "report", lambda n: asked.append(("report", n)) or "")
    monkeypatch.setattr(tables, "race_report", lambda n: asked.append(("race", n)) or "")
    monkeypatch.setattr(tables, "cv_report", lambda n: asked.append(("cv", n)) or "")
    monkeypatch.setattr(tables, "cv_race_report", lambda n: asked.append(("cv-race", n)) or "")
    tables.main(argv)
    (got,) = asked
    return got


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(["500"], ("report", 500), id="count"),
        pytest.param(["race", "500"], ("race", 500), id="race-count"),
        pytest.param([], ("report", 2000), id="default"),
        pytest.param(["race"], ("race", 1000), id="race-default"),
        pytest.param(["cv", "300"], ("cv", 300), id="cv-count"),
        pytest.param(["cv-race", "200"], ("cv-race", 200), id="cv-race-count"),
    ],
)
def test_the_command_line_runs_the_count_it_is_given(monkeypatch, argv, expected):
    assert count_asked(monkeypatch, argv) == expected


def test_a_bad_command_line_is_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        tables.main(["many"])
    assert stop.value.code == 2 and "expected [race|cv|cv-race] [N], got many" in capsys.readouterr().err


def test_cv_report_holds_the_rows_of_the_documented_tables():
    md = tables.cv_report(studies=4).splitlines()
    doc = [
        t for t in tables_of(METHOD.read_text().splitlines()) if t[0].startswith("| cross-validated scenario")
    ]
    ours = tables_of(md)
    assert len(ours) == len(doc) == 2
    for a, b in zip(ours, doc):
        assert [cells(line)[0] for line in a] == [cells(line)[0] for line in b]


def test_cv_race_report_holds_a_row_per_noise_and_pattern(monkeypatch):
    real = races.simulate_fold_races
    asked = []

    def few(pattern, n, plan, rules, cal, seed=0, partition_sd=0.0):
        asked.append((n, rules.folds, rules.max_seeds))
        return real(pattern, 1, plan, rules, cal, seed=seed, partition_sd=partition_sd)

    monkeypatch.setattr(tables, "simulate_fold_races", few)
    md = tables.cv_race_report(studies=30).splitlines()
    rows_per_noise = len(races.PATTERNS) + 2  # the patterns, then two stress rows
    assert asked == [(30, 5, 3)] * 2 * rows_per_noise and len(md) == 2 + 2 * rows_per_noise
    assert md[0].startswith("| noise | pattern | share of the 16 x 3 x 5 grid |")
