"""CertyneoCreateEnvelopeOperator, CertyneoSendEnvelopeOperator and CertyneoVoidEnvelopeOperator,
``execute`` and ``execute_complete`` called directly."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_certyneo import xcom
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.exceptions import (
    CertyneoInvalidStateError,
    CertyneoNotFoundError,
    CertyneoValidationError,
    CertyneoWaitError,
)
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook
from airflow_provider_certyneo.links.envelope import CertyneoEnvelopeLink
from airflow_provider_certyneo.operators.envelope import (
    CertyneoCreateEnvelopeOperator,
    CertyneoSendEnvelopeOperator,
    CertyneoVoidEnvelopeOperator,
)
from airflow_provider_certyneo.triggers.envelope import CertyneoEnvelopeTrigger
from tests.unit.conftest import SIGNER, FakeTaskInstance, make_context, run

# --- create ---------------------------------------------------------------------------------------------


def create(document_id: str, **kwargs: Any) -> CertyneoCreateEnvelopeOperator:
    return CertyneoCreateEnvelopeOperator(
        task_id="create", subject="Contrat", document_ids=document_id, recipients=SIGNER, **kwargs
    )


def test_create_makes_a_draft_labels_the_task_and_pushes_the_link(
    certyneo_emulator: CertyneoEmulator, api: CertyneoHook, pdf_file: Path, ti: FakeTaskInstance, context: Any
) -> None:
    document_id = api.upload_document(pdf_file)["id"]
    envelope_id = run(create(document_id, message="Merci"), context)
    envelope = api.get_envelope(envelope_id)
    assert envelope["status"] == "DRAFT"
    assert envelope["documentIds"] == [document_id]
    assert envelope["message"] == "Merci"
    assert context["certyneo_label"] == "Contrat → marie@example.com"
    assert ti.pushed(xcom.ENVELOPE_ID) == envelope_id
    assert ti.pushed(xcom.CONN_ID) == "certyneo_default"
    assert envelope_id in ti.pushed(xcom.ENVELOPE_URL)
    assert ti.pushed(CertyneoEnvelopeLink().xcom_key) == ti.pushed(xcom.ENVELOPE_URL)


def test_a_retried_create_reuses_the_identical_draft(
    certyneo_emulator: CertyneoEmulator, api: CertyneoHook, pdf_file: Path
) -> None:
    document_id = api.upload_document(pdf_file)["id"]
    run_started = datetime.now(timezone.utc) - timedelta(minutes=1)
    first = run(create(document_id), make_context(FakeTaskInstance(task_id="create")))
    retry = FakeTaskInstance(task_id="create", try_number=2)
    assert run(create(document_id), make_context(retry, run_started)) == first
    assert certyneo_emulator.control.counters()["envelopes"] == 1


@pytest.mark.parametrize(
    "recipients",
    [
        [{"email": "not-an-email", "name": "X"}],
        [{"email": "cc@example.com", "name": "Only CC", "role": "CC"}],
        [],
    ],
    ids=["bad_email", "no_signer", "nobody"],
)
def test_create_refuses_bad_recipients_before_any_request(
    certyneo_emulator: CertyneoEmulator, context: Any, recipients: list[dict[str, Any]]
) -> None:
    operator = CertyneoCreateEnvelopeOperator(
        task_id="create", subject="Contrat", document_ids=["doc_1"], recipients=recipients
    )
    with pytest.raises(CertyneoValidationError):
        run(operator, context)
    assert certyneo_emulator.control.counters()["requestsTotal"] == 0


# --- send -----------------------------------------------------------------------------------------------


def send(envelope_id: str, **kwargs: Any) -> CertyneoSendEnvelopeOperator:
    return CertyneoSendEnvelopeOperator(task_id="send", envelope_id=envelope_id, **kwargs)


def test_send_without_waiting_returns_the_sent_envelope(
    certyneo_emulator: CertyneoEmulator, draft: Callable[..., str], ti: FakeTaskInstance, context: Any
) -> None:
    envelope_id = draft()
    result = run(send(envelope_id), context)
    assert result["envelope_id"] == envelope_id
    assert result["status"] == "SENT"
    assert [r["email"] for r in result["recipients"]] == ["marie@example.com"]
    assert "sign_urls" not in result
    assert ti.pushed(xcom.ENVELOPE_ID) == envelope_id
    assert list(certyneo_emulator.control.counters()["sends"].values()) == [1]


def test_a_repeated_send_sends_no_second_invitation(
    certyneo_emulator: CertyneoEmulator, draft: Callable[..., str]
) -> None:
    envelope_id = draft()
    run(send(envelope_id), make_context(FakeTaskInstance()))
    again = run(send(envelope_id), make_context(FakeTaskInstance(try_number=2)))
    assert again["status"] == "SENT"
    assert list(certyneo_emulator.control.counters()["sends"].values()) == [1]


def test_sign_urls_only_when_asked(draft: Callable[..., str], context: Any) -> None:
    result = run(send(draft(), return_sign_urls=True), context)
    (url,) = result["sign_urls"]
    assert url["email"] == "marie@example.com"
    assert url["signUrl"].startswith("http")


def test_waiting_in_the_worker_returns_once_signed(
    certyneo_emulator: CertyneoEmulator, draft: Callable[..., str], context: Any
) -> None:
    certyneo_emulator.control.configure(autoSignAfter=0.3)
    envelope_id = draft()
    operator = send(envelope_id, wait_for_completion=True, deferrable=False, poll_interval=0.2, timeout=30)
    result = run(operator, context)
    assert result["status"] == "COMPLETED"
    assert result["recipients"][0]["status"] == "SIGNED"
    assert certyneo_emulator.control.envelope(envelope_id)["status"] == "COMPLETED"


def test_waiting_in_the_worker_fails_on_decline_naming_who(
    certyneo_emulator: CertyneoEmulator, draft: Callable[..., str], context: Any
) -> None:
    certyneo_emulator.control.configure(autoSignAfter=0.3, autoAction="decline", declineReason="Trop cher")
    operator = send(draft(), wait_for_completion=True, deferrable=False, poll_interval=0.2, timeout=30)
    with pytest.raises(CertyneoWaitError, match=r"declined by Marie Dubois <marie@example\.com>.*Trop cher"):
        run(operator, context)


def test_deferrable_defers_with_a_trigger_of_ids_and_numbers_only(
    certyneo_emulator: CertyneoEmulator, draft: Callable[..., str], context: Any
) -> None:
    envelope_id = draft()
    operator = send(envelope_id, wait_for_completion=True, deferrable=True, poll_interval=7, timeout=600)
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        run(operator, context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, CertyneoEnvelopeTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.kwargs == {"label": "Contrat → marie@example.com"}
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_certyneo.triggers.envelope.CertyneoEnvelopeTrigger"
    assert kwargs["envelope_id"] == envelope_id
    assert kwargs["certyneo_conn_id"] == "certyneo_default"
    assert kwargs["target_statuses"] == ["COMPLETED"]
    assert kwargs["poll_interval"] == 7.0
    assert before + 600 <= kwargs["end_time"] <= time.time() + 600
    assert kwargs["known_as_of"] == certyneo_emulator.control.envelope(envelope_id)["updatedAt"]
    # the hold before firing is set (0 s in the tests: AIRFLOW__CERTYNEO__RESUME_HOLD_SECONDS=0)
    assert kwargs["not_before"] is not None
    assert before <= kwargs["not_before"] <= time.time() + 1
    assert all(isinstance(v, (str, int, float, list, type(None))) for v in kwargs.values())
    assert certyneo_emulator.key not in repr(kwargs)
    timeout = deferred.value.timeout
    assert timeout is not None
    assert timedelta(seconds=600) < timeout <= timedelta(seconds=661)


def test_deferrable_send_of_a_completed_envelope_does_not_defer(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], context: Any
) -> None:
    envelope_id = sent()
    certyneo_emulator.control.sign(envelope_id)
    result = run(send(envelope_id, wait_for_completion=True, deferrable=True), context)
    assert result["status"] == "COMPLETED"


def test_execution_timeout_shortens_the_deadline(draft: Callable[..., str], context: Any) -> None:
    operator = send(
        draft(),
        wait_for_completion=True,
        deferrable=True,
        timeout=3600,
        execution_timeout=timedelta(seconds=90),
    )
    with pytest.raises(TaskDeferred) as deferred:
        run(operator, context)
    end_time = deferred.value.trigger.serialize()[1]["end_time"]
    assert end_time == pytest.approx(context["ti"].start_date.timestamp() + 90, abs=1)


def event(envelope_id: str, status: str, message: str = "it happened", **extra: Any) -> dict[str, Any]:
    return {"status": status, "envelope_id": envelope_id, "message": message, **extra}


def test_execute_complete_success_returns_the_envelope_now(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], context: Any
) -> None:
    envelope_id = sent()
    certyneo_emulator.control.sign(envelope_id)
    result = run(
        send(envelope_id),
        context,
        "execute_complete",
        event=event(envelope_id, "success", envelope_status="COMPLETED"),
        label="Contrat → marie@example.com",
    )
    assert result["status"] == "COMPLETED"
    assert context["certyneo_label"] == "Contrat → marie@example.com"


def test_execute_complete_without_label_reads_it_from_the_envelope(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], context: Any
) -> None:
    envelope_id = sent("Avenant")
    certyneo_emulator.control.sign(envelope_id)
    run(send(envelope_id), context, "execute_complete", event=event(envelope_id, "success"))
    assert context["certyneo_label"] == "Avenant → marie@example.com"


@pytest.mark.parametrize("status", ["failure", "error"])
def test_execute_complete_failure_and_error_raise_the_message(
    sent: Callable[..., str], context: Any, status: str
) -> None:
    envelope_id = sent()
    with pytest.raises(CertyneoWaitError, match="declined by someone"):
        run(
            send(envelope_id),
            context,
            "execute_complete",
            event=event(envelope_id, status, "declined by someone"),
            label="x",
        )


@pytest.mark.parametrize(
    "bad_event",
    [
        None,
        "success",
        {"status": "done"},
        {"message": "no status"},
        {"status": "success", "envelope_id": "other"},
    ],
    ids=["none", "text", "unknown_status", "no_status", "other_envelope"],
)
def test_execute_complete_refuses_a_malformed_event(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], context: Any, bad_event: Any
) -> None:
    envelope_id = sent()
    certyneo_emulator.control.sign(envelope_id)
    with pytest.raises(CertyneoWaitError, match="trigger event"):
        run(send(envelope_id), context, "execute_complete", event=bad_event, label="x")


def test_timeout_fails_and_leaves_the_envelope_sent(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], context: Any
) -> None:
    envelope_id = sent()
    with pytest.raises(CertyneoWaitError, match="timed out waiting for signatures: too late"):
        run(send(envelope_id), context, "execute_complete", event=event(envelope_id, "timeout", "too late"))
    assert certyneo_emulator.control.envelope(envelope_id)["status"] == "SENT"


def test_timeout_with_void_on_timeout_voids_a_sent_envelope(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], context: Any
) -> None:
    envelope_id = sent()
    operator = send(envelope_id, void_on_timeout=True)
    with pytest.raises(CertyneoWaitError, match="the envelope was voided"):
        run(operator, context, "execute_complete", event=event(envelope_id, "timeout"), label="x")
    assert certyneo_emulator.control.envelope(envelope_id)["status"] == "VOIDED"


def test_void_on_timeout_keeps_an_envelope_signed_at_the_deadline(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], context: Any
) -> None:
    envelope_id = sent()
    certyneo_emulator.control.sign(envelope_id)
    operator = send(envelope_id, void_on_timeout=True)
    result = run(operator, context, "execute_complete", event=event(envelope_id, "timeout"), label="x")
    assert result["status"] == "COMPLETED"
    assert certyneo_emulator.control.envelope(envelope_id)["status"] == "COMPLETED"


def test_an_error_event_never_voids(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], context: Any
) -> None:
    envelope_id = sent()
    with pytest.raises(CertyneoWaitError):
        run(
            send(envelope_id, void_on_timeout=True),
            context,
            "execute_complete",
            event=event(envelope_id, "error", "key revoked"),
            label="x",
        )
    assert certyneo_emulator.control.envelope(envelope_id)["status"] == "SENT"


def test_poll_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        send("env_1", poll_interval=0)


# --- void -----------------------------------------------------------------------------------------------


def void(envelope_id: str, **kwargs: Any) -> CertyneoVoidEnvelopeOperator:
    return CertyneoVoidEnvelopeOperator(task_id="void", envelope_id=envelope_id, **kwargs)


def test_void_a_sent_envelope(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], context: Any
) -> None:
    envelope_id = sent()
    assert run(void(envelope_id), context) == {"envelope_id": envelope_id, "status": "VOIDED"}
    assert certyneo_emulator.control.envelope(envelope_id)["status"] == "VOIDED"


def test_void_a_draft_deletes_it(api: CertyneoHook, draft: Callable[..., str], context: Any) -> None:
    envelope_id = draft()
    assert run(void(envelope_id), context) == {"envelope_id": envelope_id, "status": "DELETED"}
    with pytest.raises(CertyneoNotFoundError):
        api.get_envelope(envelope_id)


def test_void_a_missing_envelope(certyneo_emulator: CertyneoEmulator, context: Any) -> None:
    assert run(void("env_missing"), context) == {"envelope_id": "env_missing", "status": "MISSING"}
    with pytest.raises(CertyneoNotFoundError):
        run(void("env_missing", strict=True), context)


def test_void_a_terminal_envelope_reports_its_status_or_fails_when_strict(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], context: Any
) -> None:
    envelope_id = sent()
    certyneo_emulator.control.sign(envelope_id)
    assert run(void(envelope_id), context) == {"envelope_id": envelope_id, "status": "COMPLETED"}
    with pytest.raises(CertyneoInvalidStateError):
        run(void(envelope_id, strict=True), context)
    assert certyneo_emulator.control.envelope(envelope_id)["status"] == "COMPLETED"
