"""CertyneoBulkSendOperator, ``execute`` and ``execute_complete`` called directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_certyneo import xcom
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.exceptions import CertyneoValidationError, CertyneoWaitError
from airflow_provider_certyneo.operators.bulk import CertyneoBulkSendOperator
from airflow_provider_certyneo.triggers.envelope_set import CertyneoEnvelopeSetTrigger
from tests.unit.conftest import FakeTaskInstance, make_context, run


def rows(pdf: Path, count: int) -> list[dict[str, Any]]:
    return [
        {
            "pdf": str(pdf),
            "subject": f"Contrat {i}",
            "signer_email": f"client{i}@example.com",
            "signer_name": f"Client {i}",
            "row_id": f"client-{i}",
        }
        for i in range(count)
    ]


def bulk(pdf: Path, tmp_path: Path, count: int = 3, **kwargs: Any) -> CertyneoBulkSendOperator:
    return CertyneoBulkSendOperator(
        task_id="bulk", contracts=rows(pdf, count), journal=str(tmp_path / "journal.jsonl"), **kwargs
    )


def test_send_without_waiting_returns_one_row_each_and_pushes_them(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, tmp_path: Path, ti: FakeTaskInstance, context: Any
) -> None:
    results = run(bulk(pdf_file, tmp_path), context)
    assert [r["status"] for r in results] == ["SENT"] * 3
    assert all(r["envelope_id"] and r["error"] is None for r in results)
    assert ti.pushed(xcom.RESULTS) == results
    assert ti.pushed(xcom.CONN_ID) == "certyneo_default"
    counters = certyneo_emulator.control.counters()
    assert counters["documents"] == 1, "one upload for one distinct PDF"
    assert sorted(counters["sends"].values()) == [1, 1, 1]
    assert (tmp_path / "journal.jsonl").exists()


def test_a_rerun_from_the_journal_sends_nothing_twice(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, tmp_path: Path, context: Any
) -> None:
    first = run(bulk(pdf_file, tmp_path), context)
    again = run(bulk(pdf_file, tmp_path), context)
    assert [r["envelope_id"] for r in again] == [r["envelope_id"] for r in first]
    assert sorted(certyneo_emulator.control.counters()["sends"].values()) == [1, 1, 1]


def test_a_bad_row_fails_the_task_at_the_end_after_the_good_ones(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, tmp_path: Path, ti: FakeTaskInstance, context: Any
) -> None:
    contracts = rows(pdf_file, 2)
    contracts[1]["signer_email"] = "not-an-email"
    operator = CertyneoBulkSendOperator(
        task_id="bulk", contracts=contracts, journal=str(tmp_path / "j.jsonl")
    )
    with pytest.raises(CertyneoValidationError, match="1 of 2 contracts were not sent"):
        run(operator, context)
    results = ti.pushed(xcom.RESULTS)
    assert results[0]["status"] == "SENT"
    assert results[1]["error"]
    assert list(certyneo_emulator.control.counters()["sends"].values()) == [1]


def test_the_default_journal_is_named_after_the_run_and_task(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    ti = FakeTaskInstance(task_id="bulk", dag_id="contracts", run_id="manual__2026-01-01", map_index=2)
    operator = CertyneoBulkSendOperator(task_id="bulk", contracts=rows(pdf_file, 1))
    journal = operator._journal(make_context(ti))
    assert str(journal.path) == str(
        tmp_path / "certyneo-journals" / "contracts.manual__2026-01-01.bulk.2.journal.jsonl"
    )


def test_deferrable_wait_defers_on_the_set_trigger(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, tmp_path: Path, context: Any
) -> None:
    operator = bulk(pdf_file, tmp_path, wait_for_completion=True, deferrable=True, poll_interval=5)
    with pytest.raises(TaskDeferred) as deferred:
        run(operator, context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, CertyneoEnvelopeSetTrigger)
    _, kwargs = trigger.serialize()
    sent_ids = [r["envelope_id"] for r in context["ti"].pushed(xcom.RESULTS)]
    assert kwargs["envelope_ids"] == sent_ids
    assert kwargs["poll_interval"] == 5.0
    assert kwargs["not_before"] is not None
    assert certyneo_emulator.key not in repr(kwargs)


def test_waiting_in_the_worker_returns_the_rows_completed(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, tmp_path: Path, context: Any
) -> None:
    certyneo_emulator.control.configure(autoSignAfter=0.3)
    operator = bulk(
        pdf_file, tmp_path, count=2, wait_for_completion=True, deferrable=False, poll_interval=0.2
    )
    results = run(operator, context)
    assert [r["status"] for r in results] == ["COMPLETED", "COMPLETED"]
    assert [r["row"] for r in results] == ["client-0", "client-1"]
    assert context["ti"].pushed(xcom.SUMMARY)["completed"] == [r["envelope_id"] for r in results]


def sent_rows(ti: FakeTaskInstance) -> list[dict[str, Any]]:
    pushed = [
        {"row": f"client-{i}", "envelope_id": f"env_{i}", "status": "SENT", "error": None, "retryable": False}
        for i in range(3)
    ]
    ti.xcoms[("bulk", xcom.RESULTS)] = pushed
    return pushed


def test_execute_complete_returns_the_rows_from_xcom_completed(
    pdf_file: Path, tmp_path: Path, ti: FakeTaskInstance, context: Any
) -> None:
    pushed = sent_rows(ti)
    event: dict[str, Any] = {"status": "success", "message": "all signed", "failed": {}, "pending": []}
    event["completed"] = ["env_0", "env_1", "env_2"]
    results = run(bulk(pdf_file, tmp_path), context, "execute_complete", event=event)
    assert results == [{**row, "status": "COMPLETED"} for row in pushed]
    assert ti.pushed(xcom.SUMMARY) == {"completed": ["env_0", "env_1", "env_2"], "failed": {}, "pending": []}


def test_execute_complete_with_unsigned_envelopes_fails_after_the_summary(
    pdf_file: Path, tmp_path: Path, ti: FakeTaskInstance, context: Any
) -> None:
    sent_rows(ti)
    event = {
        "status": "failure",
        "message": "one declined",
        "completed": ["env_0"],
        "failed": {"env_1": "declined by Client 1"},
        "pending": ["env_2"],
    }
    with pytest.raises(CertyneoWaitError, match="1 envelopes will not be signed and 1 were still pending"):
        run(bulk(pdf_file, tmp_path), context, "execute_complete", event=event)
    assert ti.pushed(xcom.SUMMARY)["failed"] == {"env_1": "declined by Client 1"}


@pytest.mark.parametrize(
    "event",
    [
        {"status": "error", "message": "the key was revoked", "pending": ["env_0"]},
        {"status": "success", "message": "no lists"},
        {"status": "finished"},
        None,
    ],
    ids=["error", "malformed", "unknown_status", "none"],
)
def test_execute_complete_error_or_malformed_event_raises(
    pdf_file: Path, tmp_path: Path, ti: FakeTaskInstance, context: Any, event: Any
) -> None:
    sent_rows(ti)
    with pytest.raises(CertyneoWaitError, match=r"the key was revoked|unexpected trigger event"):
        run(bulk(pdf_file, tmp_path), context, "execute_complete", event=event)
    with pytest.raises(KeyError):
        ti.pushed(xcom.SUMMARY)


def test_exactly_one_of_contracts_or_manifest(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one of contracts"):
        CertyneoBulkSendOperator(task_id="bulk")
    with pytest.raises(ValueError, match="exactly one of contracts"):
        CertyneoBulkSendOperator(task_id="bulk", contracts=[], manifest=str(tmp_path / "m.csv"))
