from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"


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


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "archive"
    monkeypatch.setenv("CERTYNEO_ARCHIVE", f"file://{folder}")
    monkeypatch.setenv("CERTYNEO_POLL_INTERVAL", "0.2")
    return folder


@pytest.fixture
def signing_emulator(certyneo_emulator: CertyneoEmulator, airflow_db: None) -> CertyneoEmulator:
    certyneo_emulator.control.configure(autoSignAfter=0.5)
    return certyneo_emulator


@pytest.fixture
def output(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Callable[[], str]:
    """Everything the run logged: Airflow's task loggers write to stdout or to logging, depending on what
    configured structlog first in this process."""
    caplog.set_level("INFO")

    def read() -> str:
        captured = capsys.readouterr()
        return captured.out + captured.err + caplog.text

    return read


def run_dag(dag: Any) -> Any:
    """``dag.test()`` for a DAG defined in a test: Airflow 3 runs only serialized DAGs, and a DAG built in a
    test function lives in no DAG file, so it is written to the metadata DB first (as the DAG processor
    would), then run for real, tasks and triggers inline."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
        )
    return dag.test()
