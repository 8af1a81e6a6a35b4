"""Test-session set-up: a throwaway AIRFLOW_HOME (SQLite) before Airflow is imported, PDFs on disk."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="certyneo-airflow-home-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parent.parent / "example_dags")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_HOME}/airflow.db")

import pytest  # noqa: E402

from airflow_provider_certyneo.emulator.pdf import text_pdf  # noqa: E402

pytest_plugins: list[str] = []


@pytest.fixture
def pdf_file(tmp_path: Path) -> Path:
    path = tmp_path / "contract.pdf"
    path.write_bytes(text_pdf("Contrat de prestation", ["Between the parties...", "Article 1"]))
    return path


@pytest.fixture(autouse=True)
def _fresh_buckets() -> None:
    """Each test starts with full client-side buckets, as the emulator's are reset for it."""
    from airflow_provider_certyneo.ratelimit import forget_buckets

    forget_buckets()
