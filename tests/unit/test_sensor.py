"""CertyneoEnvelopeSensor: ``poke``, ``execute`` and ``execute_complete`` called directly."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_certyneo import xcom
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.exceptions import CertyneoWaitError
from airflow_provider_certyneo.sensors.envelope import CertyneoEnvelopeSensor
from airflow_provider_certyneo.triggers.envelope import CertyneoEnvelopeTrigger
from tests.unit.conftest import FakeTaskInstance, run


def sensor(envelope_id: str, **kwargs: Any) -> CertyneoEnvelopeSensor:
    return CertyneoEnvelopeSensor(task_id="wait", envelope_id=envelope_id, **{"poke_interval": 0.1, **kwargs})


def test_poke_is_false_until_signed_then_true(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], context: Any
) -> None:
    envelope_id = sent()
    waiting = sensor(envelope_id)
    assert run(waiting, context, "poke") is False
    assert context["certyneo_label"] == "Contrat → marie@example.com"
    certyneo_emulator.control.sign(envelope_id)
    assert run(sensor(envelope_id), context, "poke") is True


def test_poke_for_another_target_status(sent: Callable[..., str], context: Any) -> None:
    assert run(sensor(sent(), target_status="SENT"), context, "poke") is True


def test_a_declined_envelope_fails_at_once_naming_who(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], context: Any
) -> None:
    envelope_id = sent()
    certyneo_emulator.control.decline(envelope_id, reason="Le prix a change")
    with pytest.raises(CertyneoWaitError, match=r"declined by Marie Dubois <marie@example\.com>") as failed:
        run(sensor(envelope_id), context, "poke")
    assert "Le prix a change" in str(failed.value)
    assert "can never become COMPLETED" in str(failed.value)


def test_execute_in_poke_mode_returns_once_signed(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], ti: FakeTaskInstance, context: Any
) -> None:
    certyneo_emulator.control.configure(autoSignAfter=0.3)
    envelope_id = sent()
    started = time.monotonic()
    run(sensor(envelope_id, deferrable=False, timeout=30), context)
    assert time.monotonic() - started < 20
    assert certyneo_emulator.control.envelope(envelope_id)["status"] == "COMPLETED"
    assert ti.pushed(xcom.ENVELOPE_ID) == envelope_id


def test_deferrable_defers_with_the_envelope_trigger(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], context: Any
) -> None:
    envelope_id = sent()
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        run(sensor(envelope_id, deferrable=True, timeout=120, poke_interval=9), context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, CertyneoEnvelopeTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.kwargs == {"label": "Contrat → marie@example.com"}
    _, kwargs = trigger.serialize()
    assert kwargs["envelope_id"] == envelope_id
    assert kwargs["target_statuses"] == ["COMPLETED"]
    assert kwargs["poll_interval"] == 9.0
    assert before + 120 <= kwargs["end_time"] <= time.time() + 120
    assert kwargs["known_as_of"] == certyneo_emulator.control.envelope(envelope_id)["updatedAt"]
    assert kwargs["not_before"] is not None
    assert certyneo_emulator.key not in repr(kwargs)


def test_deferrable_does_not_defer_when_already_there(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], context: Any
) -> None:
    envelope_id = sent()
    certyneo_emulator.control.sign(envelope_id)
    run(sensor(envelope_id, deferrable=True), context)


def test_execute_complete(sent: Callable[..., str], context: Any) -> None:
    envelope_id = sent()
    waiting = sensor(envelope_id)
    success = {"status": "success", "envelope_id": envelope_id, "message": "signed by Marie Dubois"}
    assert run(waiting, context, "execute_complete", event=success, label="the label") is None
    assert context["certyneo_label"] == "the label"
    failure = {"status": "failure", "envelope_id": envelope_id, "message": "declined by Marie Dubois"}
    with pytest.raises(CertyneoWaitError, match="declined by Marie Dubois"):
        run(sensor(envelope_id), context, "execute_complete", event=failure, label="x")
    with pytest.raises(CertyneoWaitError, match="trigger event"):
        run(sensor(envelope_id), context, "execute_complete", event={"status": "?"}, label="x")


def test_an_unknown_target_status_is_refused() -> None:
    with pytest.raises(ValueError, match="target_status"):
        sensor("env_1", target_status="SIGNED")
