"""Test-session set-up: a throwaway AIRFLOW_HOME (SQLite) before Airflow is imported, PDFs on disk."""

from __future__ import annotations

import os
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
    """A migrated database in the session's throwaway AIRFLOW_HOME (SQLite): a copy of the one ``airflow db
    migrate`` made for this interpreter (tests/support/sqlite_template.py), then the ``certyneo_api`` pool."""
    from airflow import settings

    from tests.support.sqlite_template import copy_migrated_sqlite

    copy_migrated_sqlite(Path(_HOME) / "airflow.db", sys.executable, os.environ.copy())
    engine = getattr(settings, "engine", None)
    if engine is not None:  # a connection opened before the copy would still see the old file
        engine.dispose()
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
