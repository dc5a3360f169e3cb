"""The house's rooms: the study's sub-packages are layered, small, tested module by module, and no
class name is defined twice in src (issue #26)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.test_import_cycles import SRC, import_graph

STUDY = SRC / "imbal" / "study"
TESTS = Path(__file__).resolve().parent
# from the bottom up: a module may import its own layer and the ones below, never one above
STUDY_LAYERS = ["analysis", "run", "race", "simulation", "report", "demo"]
MAX_MODULES = 8  # per sub-package, __init__ not counted


def layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["imbal", "study"] or len(parts) < 3:
        return None
    return STUDY_LAYERS.index(parts[2])


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for module, targets in graph.items():
        here = layer(module)
        if here is None:
            continue
        for target in targets:
            there = layer(target)
            if there is not None and there > here:
                out.append(f"{module} -> {target}")
    return sorted(out)


def test_the_study_layers_are_imported_from_above_only():
    assert upward_imports(import_graph()) == []


def test_the_layer_check_finds_an_upward_import(tmp_path):
    pkg = tmp_path / "imbal" / "study"
    for sub in ("analysis", "report"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (tmp_path / "imbal" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "report" / "r.py").write_text("")
    (pkg / "analysis" / "a.py").write_text("def f():\n    from imbal.study.report import r\n")
    assert upward_imports(import_graph(tmp_path)) == ["imbal.study.analysis.a -> imbal.study.report.r"]


def test_every_sub_package_is_a_known_layer_and_small():
    subs = sorted(p.name for p in STUDY.iterdir() if p.is_dir() and (p / "__init__.py").is_file())
    assert set(subs) <= set(STUDY_LAYERS), subs
    for package in [p for p in STUDY.rglob("__init__.py")]:
        modules = [m for m in package.parent.glob("*.py") if m.name != "__init__.py"]
        assert len(modules) <= MAX_MODULES, f"{package.parent.relative_to(SRC)} holds {len(modules)} modules"
        assert ast.get_docstring(ast.parse(package.read_text())), f"{package.relative_to(SRC)} says nothing"


def test_every_study_module_has_its_test_module():
    missing = []
    for module in sorted(STUDY.rglob("*.py")):
        if module.name == "__init__.py":
            continue
        rel = module.relative_to(STUDY)
        test = TESTS / "study" / rel.parent / f"test_{module.stem}.py"
        if not test.is_file():
            missing.append(str(test.relative_to(TESTS.parent)))
    assert missing == []


def defined_classes(src: Path = SRC) -> dict[str, list[str]]:
    """Class name -> where it is defined (module path:line), over every class statement in src."""
    found: dict[str, list[str]] = {}
    for path in sorted((src / "imbal").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, []).append(f"{path.relative_to(src)}:{node.lineno}")
    return found


def test_no_class_name_is_defined_twice():
    twice = {name: where for name, where in defined_classes().items() if len(where) > 1}
    assert twice == {}


def test_report_code_reads_facts_from_the_data_model_not_from_a_row():
    hits = [
        f"{p.relative_to(SRC)}:{i}"
        for p in sorted((STUDY / "report").rglob("*.py"))
        for i, line in enumerate(p.read_text().splitlines(), start=1)
        if "iloc[0]" in line
    ]
    assert hits == []
