"""No function in src/imbal is over 60 lines (docstring included): a longer one does several things."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "imbal"
LIMIT = 60


def long_functions(src: Path = SRC, limit: int = LIMIT) -> list[str]:
    found = []
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.relative_to(src.parent)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_the_check_counts_docstrings(tmp_path):
    body = '    """' + "\n" * 60 + '    """\n    return 1\n'
    (tmp_path / "m.py").write_text("def f():\n" + body)
    assert long_functions(tmp_path) == [f"{tmp_path.name}/m.py:1 f (63 lines)"]


def test_no_function_over_60_lines():
    assert long_functions() == []
