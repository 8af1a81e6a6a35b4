"""Test-session set-up: a throwaway AIRFLOW_HOME (SQLite) before Airflow is imported, PDFs on disk."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="certyneo-airflow-home-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
# dag.test() runs triggers inline, with no scheduler to race: no need to hold events (see triggers/timing.py)
os.environ.setdefault("AIRFLOW__CERTYNEO__RESUME_HOLD_SECONDS", "0")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parent.parent / "example_dags")
# Each process its own database and archive, also each pytest-xdist worker (a worker inherits the
# controller's environment, which this module has already changed: set, never setdefault).
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
# the example DAGs archive to file:///tmp/certyneo-archive by default: shared by parallel workers and sessions
os.environ["CERTYNEO_ARCHIVE"] = f"file://{_HOME}/archive"

import pytest  # noqa: E402

from airflow_provider_certyneo.emulator.pdf import text_pdf  # noqa: E402

pytest_plugins: list[str] = []


@pytest.fixture
def pdf_file(tmp_path: Path) -> Path:
    path = tmp_path / "contract.pdf"
    path.write_bytes(text_pdf("Contrat de prestation", ["Between the parties...", "Article 1"]))
    return path


@pytest.fixture(autouse=True)
def _fresh_buckets(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with full client-side buckets (in this process and in this machine's state folder),
    as the emulator's are reset for it."""
    from airflow_provider_certyneo.governor.governor import forget_governors
    from airflow_provider_certyneo.governor.stores import STATE_DIR_ENV

    forget_governors()
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path_factory.mktemp("rate-state")))


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """`airflow db migrate` once per session, in the session's throwaway AIRFLOW_HOME (SQLite)."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    from airflow.models.pool import Pool

    Pool.create_or_update_pool("certyneo_api", 8, "Certyneo key: 100 requests/min", False)


@pytest.fixture
def output(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Callable[[], str]:
    """Everything the run logged: Airflow's task loggers write to stdout or to logging, depending on what
    configured structlog first in this process."""
    caplog.set_level("INFO")

    def read() -> str:
        captured = capsys.readouterr()
        return captured.out + captured.err + caplog.text

    return read
