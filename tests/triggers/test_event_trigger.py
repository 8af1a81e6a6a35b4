"""CertyneoEnvelopeEventTrigger (the pull watcher): one event per envelope that reaches the outcome, each
once, one list request per interval, resuming from its saved cursor; its kwargs hold no cursor."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from airflow.triggers.base import BaseEventTrigger

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook
from airflow_provider_certyneo.triggers.events import CURSOR_KEY, CertyneoEnvelopeEventTrigger

pytestmark = pytest.mark.smoke  # BaseEventTrigger and its serialization on the oldest Airflow too


class StateStore:
    """Stands in for Airflow 3.3's per-asset state store (``aget``/``aset``), which only a triggerer
    injects; the real one is exercised by the real-deployment test."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


def send_envelopes(pdf_file: Path, count: int) -> list[str]:
    with CertyneoHook() as hook:
        document = hook.upload_document(pdf_file)
        ids = []
        for i in range(count):
            signer = [{"email": f"client{i}@example.com", "name": f"Client {i}"}]
            envelope = hook.create_envelope(f"Contrat {i}", [document["id"]], signer)
            ids.append(hook.send_envelope(envelope["id"])["id"])
        return ids


async def collect(trigger: CertyneoEnvelopeEventTrigger, seconds: float) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    async def run() -> None:
        async for event in trigger.run():
            events.append(event.payload)

    task = asyncio.create_task(run())
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return events


def test_it_is_an_event_trigger_whose_kwargs_hold_no_cursor() -> None:
    trigger = CertyneoEnvelopeEventTrigger("certyneo_default", "declined", poll_interval=30)
    assert isinstance(trigger, BaseEventTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_certyneo.triggers.events.CertyneoEnvelopeEventTrigger"
    assert kwargs == {
        "certyneo_conn_id": "certyneo_default",
        "outcome": "declined",
        "poll_interval": 30.0,
        "lookback": 3600.0,
    }
    assert CertyneoEnvelopeEventTrigger(**kwargs).serialize() == (classpath, kwargs)
    with pytest.raises(ValueError, match="outcome must be one of completed, declined"):
        CertyneoEnvelopeEventTrigger(outcome="signed")
    with pytest.raises(ValueError, match="poll_interval must be a positive number"):
        CertyneoEnvelopeEventTrigger(poll_interval=0)


@pytest.mark.asyncio
@pytest.mark.slow
async def test_each_signature_is_one_event_once_and_polling_costs_one_request_per_interval(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path
) -> None:
    ids = await asyncio.to_thread(send_envelopes, pdf_file, 12)
    for envelope_id in ids[:10]:
        await asyncio.to_thread(certyneo_emulator.control.sign, envelope_id)
    await asyncio.to_thread(certyneo_emulator.control.decline, ids[10])
    before = (await asyncio.to_thread(certyneo_emulator.control.counters))["requests"]
    trigger = CertyneoEnvelopeEventTrigger(poll_interval=0.5)
    store = StateStore()
    trigger.asset_state_store = store  # type: ignore[assignment]
    events = await collect(trigger, 2.2)
    after = (await asyncio.to_thread(certyneo_emulator.control.counters))["requests"]
    lists = after.get("GET /api/v1/envelopes", 0) - before.get("GET /api/v1/envelopes", 0)
    assert sorted(e["envelope_id"] for e in events) == sorted(ids[:10])
    assert {e["status"] for e in events} == {"COMPLETED"}
    assert all("signUrl" not in str(e) for e in events)
    # the upper bound is the cost promise; a slow start on a busy machine may leave room for fewer polls
    assert 2 <= lists <= 6, f"{lists} list requests in 2.2 s at a 0.5 s interval"
    assert isinstance(store.values[CURSOR_KEY]["cursor"], str)

    await asyncio.to_thread(certyneo_emulator.control.sign, ids[11])
    resumed = CertyneoEnvelopeEventTrigger(poll_interval=0.5)
    resumed.asset_state_store = store  # type: ignore[assignment]
    later = await collect(resumed, 1.2)
    assert [e["envelope_id"] for e in later] == [ids[11]], (
        "a restart from the saved cursor replays old events"
    )
