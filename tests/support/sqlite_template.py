"""A migrated SQLite metadata database, made by a real ``airflow db migrate`` once per interpreter, Airflow
version and auth manager, then copied for each test session and each SQLite deployment.

``db migrate`` on an empty SQLite file costs about 17 s of CPU on this machine, the same every time: the
test sessions (each pytest-xdist worker, the serial run, the oldest Airflow's smoke run) and the SQLite
deployments paid it seven times per ``make test``. A copy takes milliseconds and holds exactly what the
migration made (the provider's own claims table is not in it: the receiver creates it on first use). The
templates live in this machine's temporary folder; the first process to need one makes it under a file lock
while the others wait.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

TEMPLATES = Path(tempfile.gettempdir()) / "certyneo-sqlite-templates"
# what decides the migrated schema besides the interpreter's Airflow: the auth manager's own tables
SCHEMA_SETTINGS = ("AIRFLOW__CORE__AUTH_MANAGER",)
VERSION = "import importlib.metadata as m; print(m.version('apache-airflow'))"


def _key(python: str, env: dict[str, str]) -> str:
    version = subprocess.run(
        [python, "-c", VERSION], capture_output=True, text=True, check=True, timeout=60, env=env
    ).stdout.strip()
    settings = "\0".join(f"{name}={env.get(name, '')}" for name in SCHEMA_SETTINGS)
    return hashlib.sha256(f"{Path(python).resolve()}\0{version}\0{settings}".encode()).hexdigest()[:16]


def _migrate(python: str, env: dict[str, str], database: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="certyneo-migrate-") as home:
        run_env = {  # Airflow's defaults but for the schema settings: the same template whoever asks
            **{name: value for name, value in env.items() if not name.startswith("AIRFLOW")},
            **{name: env[name] for name in SCHEMA_SETTINGS if name in env},
            "AIRFLOW_HOME": home,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{database}",
        }
        result = subprocess.run(
            [python, "-m", "airflow", "db", "migrate"],
            capture_output=True,
            text=True,
            timeout=300,
            env=run_env,
            cwd=home,
        )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def copy_migrated_sqlite(target: Path, python: str, env: dict[str, str]) -> None:
    """Put a freshly migrated SQLite database at ``target`` (a new file: a connection still open on an old
    one keeps the old one), migrating once for this interpreter and ``env``'s schema settings."""
    TEMPLATES.mkdir(parents=True, exist_ok=True)
    template = TEMPLATES / f"airflow-{_key(python, env)}.db"
    with (TEMPLATES / f"{template.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            draft = template.with_suffix(f".{os.getpid()}.draft")
            with contextlib.suppress(FileNotFoundError):
                draft.unlink()
            _migrate(python, env, draft)
            os.replace(draft, template)
    target.parent.mkdir(parents=True, exist_ok=True)
    copy = target.with_name(f".{target.name}.{os.getpid()}.copy")
    shutil.copyfile(template, copy)
    os.replace(copy, target)
