"""The provider as users install it: a wheel built from this checkout (``uv build``, isolated, as
``python -m build`` would), for the packaging tests and the production-shaped deployment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build_wheel(out: Path) -> Path:
    """Build the wheel into ``out`` and return its path."""
    uv = Path(sys.executable).with_name("uv")
    command = [str(uv), "build", "--wheel", "--quiet", "--out-dir", str(out), str(ROOT)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("airflow_provider_certyneo-*.whl")
    return wheel
