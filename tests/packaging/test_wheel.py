"""What the built wheel carries: the licence and notice, the type marker, the Signatures view's templates,
the plugin and provider entry points; no tests, no example DAGs."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.wheel import build_wheel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    with zipfile.ZipFile(build_wheel(tmp_path_factory.mktemp("wheel"))) as built:
        yield built


def names(wheel: zipfile.ZipFile) -> set[str]:
    return set(wheel.namelist())


def test_the_wheel_carries_the_licence_and_the_notice(wheel: zipfile.ZipFile) -> None:
    licences = {n.rsplit("/", 1)[-1]: n for n in names(wheel) if ".dist-info/licenses/" in n}
    assert set(licences) == {"LICENSE", "NOTICE"}, licences
    text = wheel.read(licences["LICENSE"]).decode()
    assert "Apache License" in text
    assert "Version 2.0" in text
    assert text == (Path(__file__).resolve().parents[2] / "LICENSE").read_text()
    metadata = next(n for n in names(wheel) if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: Apache-2.0" in wheel.read(metadata).decode()


def test_the_wheel_carries_the_package_and_its_entry_points(wheel: zipfile.ZipFile) -> None:
    files = names(wheel)
    assert "airflow_provider_certyneo/py.typed" in files
    assert "airflow_provider_certyneo/plugins/receiver.py" in files
    assert not [n for n in files if n.startswith(("tests/", "example_dags/", "benchmarks/"))]
    entry_points = wheel.read(next(n for n in files if n.endswith("entry_points.txt"))).decode()
    assert "[apache_airflow_provider]" in entry_points
    assert "[airflow.plugins]" in entry_points


def test_the_wheel_ships_the_signatures_templates(wheel: zipfile.ZipFile) -> None:
    """The Signatures view renders from Jinja2 templates that are package data, not Python: without them the
    installed view fails with TemplateNotFound while an editable checkout works."""
    root = Path(__file__).resolve().parents[2]
    templates = root / "airflow_provider_certyneo" / "plugins" / "templates"
    expected = {str(p.relative_to(root)) for p in templates.rglob("*.html")}
    assert expected, "no templates found in the source tree"
    assert expected <= names(wheel), f"missing from the wheel: {sorted(expected - names(wheel))}"
