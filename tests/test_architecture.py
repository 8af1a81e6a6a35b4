"""The package's layering, enforced: which folder may import which, and no import cycles.

Every import counts — at module level, inside functions, under ``TYPE_CHECKING`` — because an import inside
a function is still a dependency, only a later one. The table below is the README's "Architecture" section;
a new folder or top-level module must be added to both.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "airflow_provider_certyneo"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

# component → the provider components it may import (besides itself)
MAY_IMPORT: dict[str, set[str]] = {
    "version": set(),
    "exceptions": set(),
    "xcom": set(),
    "governor": {"exceptions"},
    "client": {"exceptions", "version", "governor"},
    "provider_info": {"client", "version"},
    "__init__": {"version", "provider_info"},
    "hooks": {"client", "governor", "exceptions", "version", "provider_info"},
    "links": {"client", "xcom"},
    "triggers": {"client", "hooks", "governor", "exceptions"},
    "bulk": {"client", "hooks", "governor", "exceptions"},
    "evidence": {"client", "exceptions"},
    "mixins": {"client", "hooks", "links", "triggers", "exceptions", "xcom"},
    "lineage": set(),
    "operators": {
        "client",
        "hooks",
        "links",
        "triggers",
        "bulk",
        "evidence",
        "mixins",
        "exceptions",
        "xcom",
        "lineage",
    },
    "sensors": {"client", "hooks", "links", "triggers", "mixins", "exceptions", "xcom"},
    "assets": {"client", "triggers"},
    "plugins": {"client", "hooks", "assets", "exceptions", "xcom"},
    "cli": {"client", "hooks", "evidence", "exceptions"},
    "emulator": set(),
}
# Airflow parts the lower layers must not reach: they run without tasks, triggers or the metadata database.
AIRFLOW_TASK_SIDE = ("airflow.models", "airflow.triggers", "airflow.sdk.bases", "airflow.providers.standard")
AIRFLOW_TASK_CLASSES = {"BaseOperator", "BaseSensorOperator", "BaseHook", "BaseTrigger", "DAG"}
AIRFLOW_FREE = ("client", "governor", "emulator", "evidence")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def component(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(path: Path, source: str | None = None) -> Iterator[tuple[str, set[str], int]]:
    """(imported module, names taken from it, line) for every import in the file (or in ``source``, read
    as if it were that file)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    text = path.read_text() if source is None else source
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, set(), node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = {alias.name for alias in node.names}
            yield base, names, node.lineno


def provider_edges(path: Path, source: str | None = None) -> Iterator[tuple[str, int]]:
    """The provider modules a file imports: ``from pkg import submodule`` names the submodule."""
    for base, names, line in imports_of(path, source):
        if base != PACKAGE and not base.startswith(PACKAGE + "."):
            continue
        submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES]
        yield from ((m, line) for m in submodules or [base])


def test_every_component_is_in_the_table() -> None:
    unknown = sorted({component(m) for m in MODULES} - set(MAY_IMPORT))
    assert not unknown, f"add {unknown} to MAY_IMPORT here and to the README's Architecture section"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module: str) -> None:
    here = component(module)
    wrong = [
        f"line {line}: {target}"
        for target, line in provider_edges(MODULES[module])
        if component(target) != here and component(target) not in MAY_IMPORT.get(here, set())
    ]
    assert not wrong, f"{module} ({here}/) may import only {sorted(MAY_IMPORT.get(here, set()))}: {wrong}"


@pytest.mark.parametrize("module", [m for m in sorted(MODULES) if component(m) in AIRFLOW_FREE])
def test_lower_layers_reach_no_airflow_task_machinery(module: str) -> None:
    wrong = [
        f"line {line}: {base} {sorted(names)}"
        for base, names, line in imports_of(MODULES[module])
        if base.startswith(AIRFLOW_TASK_SIDE) or (base.startswith("airflow") and names & AIRFLOW_TASK_CLASSES)
    ]
    if component(module) == "emulator":
        wrong += [
            f"line {line}: {base}"
            for base, _, line in imports_of(MODULES[module])
            if base == "airflow" or base.startswith("airflow.")
        ]
    assert not wrong, f"{module} must not import Airflow's operators, triggers or models: {wrong}"


def test_no_import_cycles() -> None:
    graph = {m: {t for t, _ in provider_edges(p) if t in MODULES and t != m} for m, p in MODULES.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles: " + "; ".join(" → ".join(c) for c in cycles)


def test_the_checks_see_a_planted_violation() -> None:
    """The walker finds imports inside functions and relative ones (so the tests above can fail)."""
    planted = ROOT / "client" / "probe.py"
    source = (
        "def f():\n    from airflow_provider_certyneo.operators import base\n    from ..hooks import base\n"
    )
    found = [(base, line) for base, _, line in imports_of(planted, source)]
    assert ("airflow_provider_certyneo.operators", 2) in found
    assert ("airflow_provider_certyneo.hooks", 3) in found
    assert "airflow_provider_certyneo.operators.base" in [m for m, _ in provider_edges(planted, source)]
