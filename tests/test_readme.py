"""The README's promises name tests that exist: every test id of the Guarantees table is a file of the
suite and, where it names one, a test function of that file (``…::name`` reuses the file named before it
in the same cell)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def guarantees_rows() -> list[str]:
    section = README[README.index("## Guarantees") :]
    section = section[: section.index("\n## ", 3)]
    return [line for line in section.splitlines() if line.startswith("| ") and "`tests/" in line]


def named_tests(row: str) -> list[tuple[str, str | None]]:
    """(file, test name or None) for each test id in the row's cells."""
    named: list[tuple[str, str | None]] = []
    for cell in row.split(" | "):
        current: str | None = None
        for ref in re.findall(r"`((?:tests/[^`:]+\.py|…)(?:::[A-Za-z0-9_]+)?)`", cell):
            path, _, name = ref.partition("::")
            current = current if path == "…" else path
            assert current is not None, f"'…' with no file before it in: {cell}"
            named.append((current, name or None))
    return named


def functions_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")
    }


def test_the_guarantees_table_names_tests_that_exist() -> None:
    rows = guarantees_rows()
    assert len(rows) >= 20, "the Guarantees table was not found"
    missing = []
    for row in rows:
        for file, name in named_tests(row):
            path = ROOT / file
            if not path.is_file():
                missing.append(file)
            elif name is not None and name not in functions_in(path):
                missing.append(f"{file}::{name}")
    assert not missing, f"the README names tests that do not exist: {missing}"


def test_the_check_sees_a_missing_test() -> None:
    row = "| p | `tests/test_readme.py::test_nothing_like_this`, `…::test_the_check_sees_a_missing_test`"
    assert named_tests(row) == [
        ("tests/test_readme.py", "test_nothing_like_this"),
        ("tests/test_readme.py", "test_the_check_sees_a_missing_test"),
    ]
    assert "test_nothing_like_this" not in functions_in(ROOT / "tests/test_readme.py")
