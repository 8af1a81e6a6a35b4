"""Every example DAG parses cleanly without network access, and runs end to end against the emulator."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from tests.dags.conftest import EXAMPLES
from tests.dags.test_quickstart import load, states


def test_every_example_parses_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an example DAG touched the network while being parsed")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    bag = DagBag(dag_folder=str(EXAMPLES))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) >= {
        "certyneo_quickstart",
        "certyneo_bulk_mapped",
        "certyneo_bulk_operator",
        "certyneo_onboarding",
        "certyneo_taskflow",
    }


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "drop"
    shutil.copytree(EXAMPLES / "files", folder)
    monkeypatch.setenv("CERTYNEO_BULK_MANIFEST", str(folder / "clients.csv"))
    monkeypatch.setenv("CERTYNEO_POLL_INTERVAL", "0.2")
    return folder / "clients.csv"


def test_bulk_mapped_signed(signing_emulator: CertyneoEmulator, manifest: Path, output: Any) -> None:
    run = load("certyneo_bulk_contracts").mapped_dag.test()
    result = states(run)
    assert result["summarize"] == "success"
    assert "Signed (5): marie.dubois@example.com" in output()
    sends = signing_emulator.control.counters()["sends"]
    assert len(sends) == 5
    assert set(sends.values()) == {1}


def test_bulk_mapped_declined(signing_emulator: CertyneoEmulator, manifest: Path, output: Any) -> None:
    signing_emulator.control.configure(autoAction="decline", declineReason="Trop cher")
    run = load("certyneo_bulk_contracts").mapped_dag.test()
    tis = run.get_task_instances()
    assert {str(ti.state) for ti in tis if ti.task_id == "send_and_wait"} == {"failed"}
    assert states(run)["summarize"] == "success"
    text = output()
    assert "Not signed: envelope" in text
    assert "reason: Trop cher" in text


def test_bulk_operator_signed(signing_emulator: CertyneoEmulator, manifest: Path, output: Any) -> None:
    run = load("certyneo_bulk_contracts").operator_dag.test()
    assert states(run) == {"bulk_send": "success", "envelope_ids": "success", "summarize": "success"}
    assert "Signed (5):" in output()
    assert list((manifest.parent / ".certyneo").glob("*.journal.jsonl")), (
        "the journal sits beside the manifest"
    )
