"""The provider as users install it: a wheel built from an sdist of this checkout (``uv build``, isolated,
as an index would build it), for the packaging tests and the production-shaped deployment. The build runs
on a copy of the sources, so that it leaves no ``build/`` or egg-info beside them."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_SHIPPED = shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "tests", "__pycache__")


def build_wheel(out: Path) -> Path:
    """Build the sdist, then the wheel from it, into ``out``; returns the wheel's path."""
    source = out / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SHIPPED)
    uv = Path(sys.executable).with_name("uv")
    command = [str(uv), "build", "--quiet", "--out-dir", str(out), str(source)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("airflow_provider_certyneo-*.whl")
    return wheel


def source_digest() -> str:
    """SHA-256 of every file :func:`build_wheel` copies (path and content): equal digests, equal wheels."""
    digest = hashlib.sha256()
    for folder, names, files in os.walk(ROOT):
        ignored = NOT_SHIPPED(folder, [*names, *files])
        names[:] = sorted(name for name in names if name not in ignored)
        for name in sorted(name for name in files if name not in ignored):
            path = Path(folder) / name
            digest.update(f"{path.relative_to(ROOT)}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
