"""The emulator stays out of users' way: its pytest plugin imports nothing heavy until a test asks for the
fixture, and the command without the ``emulator`` extra says how to install it instead of failing later."""

from __future__ import annotations

import subprocess
import sys


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
