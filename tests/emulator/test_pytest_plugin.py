"""What the pytest plugin's docstring promises: registered wherever the provider is installed (no extra
needed for that), and light until a test asks for the emulator."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points


def test_the_plugin_is_registered_by_the_package_itself() -> None:
    registered = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert registered.get("certyneo") == "airflow_provider_certyneo.emulator.pytest_plugin"


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    probe = (
        "import sys, airflow_provider_certyneo.emulator.pytest_plugin; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'pypdf', 'airflow') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
