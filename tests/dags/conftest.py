from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator


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
