"""The emulator stays out of users' way: its pytest plugin imports nothing heavy until a test asks for the
fixture, and the command without the ``emulator`` extra says how to install it instead of failing later."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_the_pytest_plugin_imports_nothing_heavy() -> None:
    result = run_python(
        "import sys, airflow_provider_certyneo.emulator.pytest_plugin\n"
        "heavy = [m for m in ('fastapi', 'uvicorn', 'pypdf', 'starlette') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_command_without_the_extra_names_the_install_command() -> None:
    result = run_python(
        "import sys\n"
        "sys.modules['pypdf'] = None\n"
        "from airflow_provider_certyneo.emulator.cli import main\n"
        "raise SystemExit(main(['--port', '0']))"
    )
    assert result.returncode == 2
    assert "needs pypdf" in result.stderr
    assert 'pip install "airflow-provider-certyneo[emulator]"' in result.stderr


@pytest.mark.slow
def test_the_wheel_ships_the_signatures_templates(tmp_path: Path) -> None:
    """The Signatures view renders from Jinja2 templates that are package data, not Python: a wheel built
    from the sdist (as an index would) must carry every one of them, or the installed view fails with
    TemplateNotFound while an editable checkout works."""
    root = Path(__file__).resolve().parents[2]
    source = tmp_path / "source"  # a copy: the build writes egg-info and build/ beside the sources
    shutil.copytree(root, source, ignore=shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "tests"))
    uv = Path(sys.executable).with_name("uv")
    dist = str(tmp_path / "dist")
    if uv.exists():
        command = [str(uv), "build", "--out-dir", dist, str(source)]
    else:
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist, str(source)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    templates = root / "airflow_provider_certyneo" / "plugins" / "templates"
    expected = {str(p.relative_to(root)) for p in templates.rglob("*.html")}
    assert expected, "no templates found in the source tree"
    assert expected <= shipped, f"missing from the wheel: {sorted(expected - shipped)}"
