"""The simulation tables of docs/method.md (simulation/tables.py): their rows, and the command line's count."""

import re
import runpy
import warnings
from pathlib import Path

import pytest

from imbal.study.simulation import races, studies, tables

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
    """A row's scenario with the numbers that depend on the draw (the planned seeds, the power) blanked."""
    text = cells(line)[0]
    text = re.sub(r"promised power [0-9.]+", "promised power P", text)
    return re.sub(r"\+0\.05 truly, (?!5 seeds)\d+ seeds", "+0.05 truly, N seeds", text)


def test_report_holds_the_rows_of_the_documented_table():
    md = tables.report(studies=12).splitlines()
    doc = doc_table("| scenario | measured | Monte Carlo SE |")
    assert md[:2] == doc[:2] and len(md) == len(doc) == 23
    assert [scenario(line) for line in md[2:]] == [scenario(line) for line in doc[2:]]
    for line in md[2:]:
        _, measured, se = cells(line)
        # a mean of differences carries its sign (4 decimals), a rate does not (3 decimals)
        assert re.fullmatch(r"[+-]0\.\d{4}|[01]\.\d{3}", measured) and 0 <= float(se) < 1, line
        assert measured.startswith(("+", "-")) == ("minus its truth" in line), line


def test_race_report_holds_the_rows_of_the_documented_tables(monkeypatch):
    asked = []
    real = races.simulate_races

    def few(pattern, count, plan, rules, seed=0):
        asked.append(count)
        return real(pattern, 3, plan, rules, seed=seed)  # the image model, cut short for speed

    monkeypatch.setattr(tables, "simulate_races", few)
    md = tables.race_report(studies=20).splitlines()
    assert asked == [200] * 5  # the image rows run at least 200 races each
    score = doc_table(md[0])
    images = doc_table(md[len(score) + 1])
    assert md[len(score)] == "" and len(md) == len(score) + 1 + len(images) == 2 + 10 + 1 + 2 + 5
    assert md[:2] == score[:2] and md[len(score) + 1 : len(score) + 3] == images[:2]
    # the same models, patterns and seed limits, in the documented order
    assert [cells(line)[:3] for line in md[2 : len(score)]] == [cells(line)[:3] for line in score[2:]]
    assert [cells(line)[:2] for line in md[len(score) + 3 :]] == [cells(line)[:2] for line in images[2:]]
    for line in md[2 : len(score)] + md[len(score) + 3 :]:
        shares = [c for c in cells(line) if c.endswith("%")]
        assert shares and all(0 <= float(c[:-1]) <= 100 for c in shares), line


class Stop(Exception):
    """Raised by the first simulation the command line starts, with the number of studies it asked for."""


def count_asked(monkeypatch, argv: list[str]) -> tuple[str, int]:
    """Run ``python -m imbal.study.simulation.tables ARGV`` up to its first simulation: (which, studies)."""

    def stop(which):
        def simulation(*args, **kw):
            raise Stop(which, args[1])

        return simulation

    monkeypatch.setattr(studies, "run", stop("report"))
    monkeypatch.setattr(races, "score_races", stop("race"))
    monkeypatch.setattr("sys.argv", ["tables", *argv])
    with warnings.catch_warnings(), pytest.raises(Stop) as stopped:
        warnings.simplefilter("ignore", RuntimeWarning)  # the module is imported already: runpy says so
        runpy.run_module("imbal.study.simulation.tables", run_name="__main__")
    return stopped.value.args


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            ["500"],
            ("report", 500),
            marks=pytest.mark.xfail(strict=True, reason="issue #27 item 8"),
            id="count",
        ),
        pytest.param(["race", "500"], ("race", 500), id="race-count"),
        pytest.param([], ("report", 2000), id="default"),
    ],
)
def test_the_command_line_runs_the_count_it_is_given(monkeypatch, argv, expected):
    assert count_asked(monkeypatch, argv) == expected
