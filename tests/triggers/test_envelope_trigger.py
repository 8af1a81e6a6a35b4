"""CertyneoEnvelopeTrigger: its run() generator against the emulator, its serialization, its arguments."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from airflow_provider_certyneo.emulator.handle import EmulatorControl, connection_json
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.emulator.server import emulator_process
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook
from airflow_provider_certyneo.hooks.certyneo_async import CertyneoAsyncHook
from airflow_provider_certyneo.triggers.envelope import CertyneoEnvelopeTrigger
from tests.support.polling import await_until

SIGNER = [{"email": "marie@example.com", "name": "Marie Dubois"}]


@pytest.fixture
def sent(certyneo_emulator: CertyneoEmulator, pdf_file: Path) -> str:
    with CertyneoHook() as hook:
        envelope = hook.create_envelope("Contrat", [hook.upload_document(pdf_file)["id"]], SIGNER)
        hook.send_envelope(envelope["id"])
        return envelope["id"]


async def first_event(trigger: CertyneoEnvelopeTrigger, within: float = 20) -> dict[str, Any]:
    async def first() -> TriggerEvent:
        async for event in trigger.run():
            return event
        raise AssertionError("the trigger ended without an event")

    event = await asyncio.wait_for(first(), within)
    payload: dict[str, Any] = event.payload
    return payload


async def act_later(seconds: float, action: Any, *args: Any) -> None:
    await asyncio.sleep(seconds)
    await asyncio.to_thread(action, *args)


async def act_when(condition: Callable[[], bool], action: Any, *args: Any, within: float = 20) -> None:
    """``action`` once ``condition`` (a blocking check, run in a thread) holds: a moment, not a time."""
    await await_until(
        lambda: asyncio.to_thread(condition), timeout=within, interval=0.05, what="the moment to act"
    )
    await asyncio.to_thread(action, *args)


@pytest.mark.asyncio
async def test_completed(certyneo_emulator: CertyneoEmulator, sent: str) -> None:
    task = asyncio.create_task(act_later(0.3, certyneo_emulator.control.sign, sent))
    event = await first_event(CertyneoEnvelopeTrigger(sent, poll_interval=0.1))
    await task
    assert event["status"] == "success"
    assert event["envelope_id"] == sent
    assert event["envelope_status"] == "COMPLETED"


@pytest.mark.asyncio
@pytest.mark.parametrize("known", [True, False], ids=["known_as_of", "read_first"])
async def test_a_worker_clock_ahead_of_certyneo_misses_nothing(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, known: bool
) -> None:
    """Certyneo's clock is a minute behind this machine's: "changed since" must be asked in Certyneo's time
    (read from its Date header), or the signature, stamped a minute "earlier", is never seen."""
    certyneo_emulator.control.configure(clockSkewSeconds=-60)
    with CertyneoHook() as hook:
        envelope = hook.create_envelope("Contrat", [hook.upload_document(pdf_file)["id"]], SIGNER)
        updated_at = hook.send_envelope(envelope["id"])["updatedAt"]
    trigger = CertyneoEnvelopeTrigger(
        envelope["id"], poll_interval=0.1, known_as_of=updated_at if known else None
    )
    signing = asyncio.create_task(act_later(0.6, certyneo_emulator.control.sign, envelope["id"]))
    event = await first_event(trigger, within=5)
    await signing
    assert event["status"] == "success"


@pytest.mark.asyncio
async def test_declined_names_signer_and_reason(certyneo_emulator: CertyneoEmulator, sent: str) -> None:
    certyneo_emulator.control.decline(sent, "Montant erroné")
    event = await first_event(CertyneoEnvelopeTrigger(sent, poll_interval=0.1))
    assert event["status"] == "failure"
    assert event["envelope_status"] == "DECLINED"
    assert "declined by Marie Dubois <marie@example.com>, reason: Montant erroné" in event["message"]


@pytest.mark.asyncio
async def test_voided(sent: str) -> None:
    with CertyneoHook() as hook:
        hook.void_envelope(sent)
    event = await first_event(CertyneoEnvelopeTrigger(sent, poll_interval=0.1))
    assert (event["status"], event["envelope_status"]) == ("failure", "VOIDED")


@pytest.mark.asyncio
async def test_expired(certyneo_emulator: CertyneoEmulator, sent: str) -> None:
    certyneo_emulator.control.expire(sent)
    event = await first_event(CertyneoEnvelopeTrigger(sent, poll_interval=0.1))
    assert (event["status"], event["envelope_status"]) == ("failure", "EXPIRED")
    assert "not signed by Marie Dubois" in event["message"]


@pytest.mark.asyncio
@pytest.mark.serial
async def test_timeout(sent: str) -> None:
    started = time.monotonic()
    event = await first_event(CertyneoEnvelopeTrigger(sent, poll_interval=5, end_time=time.time() + 0.5))
    assert event["status"] == "timeout"
    assert time.monotonic() - started < 2, "the wait is cut at the deadline, not at the next poll"


@pytest.mark.asyncio
async def test_unknown_envelope_is_an_error_event(certyneo_emulator: CertyneoEmulator) -> None:
    event = await first_event(CertyneoEnvelopeTrigger("env_unknown", poll_interval=0.1))
    assert event["status"] == "error"
    assert "404" in event["message"]


@pytest.mark.asyncio
async def test_rides_out_503s_and_429s(
    certyneo_emulator: CertyneoEmulator, sent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CERTYNEO_FLAKY", certyneo_emulator.connection_json(max_retries=1))
    certyneo_emulator.control.set_faults({"action": "error503", "method": "GET", "times": 6})
    certyneo_emulator.control.configure(ratePerMinute=600, burst=3)
    control = certyneo_emulator.control
    task = asyncio.create_task(act_when(lambda: control.counters()["rateLimited"] > 0, control.sign, sent))
    event = await first_event(CertyneoEnvelopeTrigger(sent, "certyneo_flaky", poll_interval=0.05), within=30)
    await task
    assert event["status"] == "success"
    counters = certyneo_emulator.control.counters()
    assert certyneo_emulator.control.faults()[0]["fired"] == 6
    assert counters["rateLimited"] > 0, "the server should have answered some polls with 429"


def test_serialize_round_trip() -> None:
    trigger = CertyneoEnvelopeTrigger(
        "env_1", "certyneo_x", poll_interval=12, end_time=1_900_000_000.5, target_statuses=["SENT"]
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_certyneo.triggers.envelope.CertyneoEnvelopeTrigger"
    assert kwargs == {
        "envelope_id": "env_1",
        "certyneo_conn_id": "certyneo_x",
        "poll_interval": 12.0,
        "end_time": 1_900_000_000.5,
        "target_statuses": ["SENT"],
        "poll_share": 0.5,
        "known_as_of": None,
        "not_before": None,
    }
    rebuilt = CertyneoEnvelopeTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert all(isinstance(v, (str, int, float, list, type(None))) for v in kwargs.values())


def test_serde_accepts_the_kwargs() -> None:
    from airflow.sdk.serde import deserialize, serialize

    _, kwargs = CertyneoEnvelopeTrigger("env_1", end_time=None).serialize()
    assert deserialize(serialize(kwargs)) == kwargs


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"envelope_id": ""}, "envelope_id"),
        ({"envelope_id": None}, "envelope_id"),
        ({"envelope_id": "e", "poll_interval": 0}, "poll_interval"),
        ({"envelope_id": "e", "end_time": "tomorrow"}, "end_time"),
        ({"envelope_id": "e", "target_statuses": ["SIGNED"]}, "target_statuses"),
        ({"envelope_id": "e", "certyneo_conn_id": ""}, "certyneo_conn_id"),
        ({"envelope_id": "e", "poll_share": 0}, "poll_share"),
        ({"envelope_id": "e", "poll_share": 1.5}, "poll_share"),
        ({"envelope_id": "e", "known_as_of": "yesterday"}, "known_as_of"),
        ({"envelope_id": "e", "known_as_of": 12}, "known_as_of"),
        ({"envelope_id": "e", "not_before": "soon"}, "not_before"),
        ({"envelope_id": "e", "end_time": True}, "end_time"),
    ],
)
def test_bad_arguments_fail_at_defer_time(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        CertyneoEnvelopeTrigger(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"envelope_ids": "e"}, "envelope_ids"),
        ({"envelope_ids": ["e", ""]}, "envelope_ids"),
        ({"envelope_ids": ["e"], "poll_interval": -1}, "poll_interval"),
        ({"envelope_ids": ["e"], "end_time": True}, "end_time"),
        ({"envelope_ids": ["e"], "certyneo_conn_id": ""}, "certyneo_conn_id"),
        ({"envelope_ids": ["e"], "poll_share": 2}, "poll_share"),
        ({"envelope_ids": ["e"], "known_as_of": "yesterday"}, "known_as_of"),
        ({"envelope_ids": ["e"], "not_before": "soon"}, "not_before"),
    ],
)
def test_the_set_trigger_checks_the_same_schema(kwargs: dict[str, Any], fragment: str) -> None:
    """Both triggers go through one schema (triggers/arguments.py): the same bad value, the same refusal."""
    from airflow_provider_certyneo.triggers.envelope_set import CertyneoEnvelopeSetTrigger

    with pytest.raises(ValueError, match=fragment):
        CertyneoEnvelopeSetTrigger(**kwargs)


def test_both_triggers_serialize_the_same_waiting_arguments() -> None:
    from airflow_provider_certyneo.triggers.envelope_set import CertyneoEnvelopeSetTrigger

    common: dict[str, Any] = {
        "certyneo_conn_id": "c",
        "poll_interval": 3.0,
        "end_time": 5.0,
        "not_before": 4.0,
    }
    _, one = CertyneoEnvelopeTrigger("e", **common).serialize()
    _, many = CertyneoEnvelopeSetTrigger(["e"], **common).serialize()
    assert {k: v for k, v in one.items() if k not in ("envelope_id", "target_statuses")} == {
        k: v for k, v in many.items() if k != "envelope_ids"
    }


@pytest.fixture
def separate_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorControl]:
    """The emulator in its own process (the console script), so that its work cannot hold this process's
    GIL and pass for a blocked event loop."""
    key = "sk_test_" + "p" * 30
    with emulator_process(key, per_minute=1_000_000, burst=100_000) as base_url:
        monkeypatch.setenv(
            "AIRFLOW_CONN_CERTYNEO_DEFAULT",
            connection_json(base_url, key, rate_limit_per_minute=1_000_000, rate_limit_burst=100_000),
        )
        control = EmulatorControl(base_url)
        yield control
        control.close()


@pytest.mark.asyncio
@pytest.mark.serial
async def test_many_triggers_share_one_loop_without_blocking(
    separate_emulator: EmulatorControl, pdf_file: Path
) -> None:
    """Fifty triggers on one event loop, polling every 0.2 s: a heartbeat on the same loop is hardly ever
    held up (a blocking sleep or connection look-up in a trigger would hold it at every poll). The objects
    already made are frozen out of the garbage collector, whose full passes over Airflow's heap take
    100-200 ms and are no trigger's doing; a pause or two of the machine's own is allowed."""
    with CertyneoHook() as hook:
        document = hook.upload_document(pdf_file)
        ids = []
        for _ in range(50):
            envelope = hook.create_envelope("Bulk", [document["id"]], SIGNER)
            hook.send_envelope(envelope["id"])
            ids.append(envelope["id"])
    async with CertyneoAsyncHook() as warm_up:
        await warm_up.get_envelope(ids[0])
    lags: list[float] = []
    done = asyncio.Event()

    async def heartbeat() -> None:
        while not done.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - before - 0.01)

    gc.freeze()
    beat = asyncio.create_task(heartbeat())
    signer = asyncio.create_task(act_later(1.0, lambda: [separate_emulator.sign(i) for i in ids]))
    events = await asyncio.gather(
        *(first_event(CertyneoEnvelopeTrigger(i, poll_interval=0.2), 60) for i in ids)
    )
    await signer
    done.set()
    await beat
    gc.unfreeze()
    assert {e["status"] for e in events} == {"success"}
    assert len(lags) > 50
    held_up = sorted(round(lag * 1000) for lag in lags if lag >= 0.1)
    assert len(held_up) <= 2, f"the loop was held up {len(held_up)} times, for {held_up} ms"
    typical = sorted(lags)[int(0.95 * len(lags))]
    assert typical < 0.05, f"95% of the beats were up to {typical * 1000:.0f} ms late"


@pytest.mark.asyncio
@pytest.mark.serial
async def test_waiting_costs_do_not_grow_with_the_number_of_triggers(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path
) -> None:
    """Forty triggers on one connection: one GET each to start, then one list call per poll interval for
    all of them; a completion is noticed within one interval."""
    certyneo_emulator.control.configure(ratePerMinute=100_000, burst=10_000)
    with CertyneoHook() as hook:
        document = hook.upload_document(pdf_file)
        ids = []
        for _ in range(40):
            envelope = hook.create_envelope("Many", [document["id"]], SIGNER)
            hook.send_envelope(envelope["id"])
            ids.append(envelope["id"])
    before = certyneo_emulator.control.counters()["requests"]
    interval = 0.4
    started = time.monotonic()
    waits = [
        asyncio.create_task(first_event(CertyneoEnvelopeTrigger(i, poll_interval=interval), 30)) for i in ids
    ]
    await asyncio.sleep(2.0)
    await asyncio.to_thread(lambda: [certyneo_emulator.control.sign(i) for i in ids])
    signed_at = time.monotonic()
    events = await asyncio.gather(*waits)
    noticed = time.monotonic() - signed_at
    elapsed = time.monotonic() - started
    after = certyneo_emulator.control.counters()["requests"]
    gets = after.get("GET /api/v1/envelopes/{id}", 0) - before.get("GET /api/v1/envelopes/{id}", 0)
    lists = after.get("GET /api/v1/envelopes", 0) - before.get("GET /api/v1/envelopes", 0)
    assert {e["status"] for e in events} == {"success"}
    assert gets == 40
    assert lists <= elapsed / interval + 2
    assert noticed <= interval + 1.0


@pytest.mark.asyncio
async def test_the_poll_budget_pays_for_every_page_of_a_round(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round that pages through many changes (the first of the month, thousands completing) pays one
    poll-budget token for each request, not one per round: the poller's charges equal the GETs the server
    counted (issue 22, bug 3)."""
    from airflow_provider_certyneo.triggers.watcher import EnvelopeWatcher

    with CertyneoHook() as hook:
        document = hook.upload_document(pdf_file)["id"]
        watched = hook.create_envelope("Contrat", [document], SIGNER)
        seen = hook.send_envelope(watched["id"])["updatedAt"]
        for i in range(150):  # 150 other changes since then: a round of two pages
            hook.create_envelope(f"Contrat {i}", [document], SIGNER)
    charged = {"n": 0}
    paced = EnvelopeWatcher._paced

    async def counting(self: EnvelopeWatcher, budget: Any) -> None:
        charged["n"] += 1
        await paced(self, budget)

    monkeypatch.setattr(EnvelopeWatcher, "_paced", counting)
    gets_before = {k: v for k, v in certyneo_emulator.control.counters()["requests"].items() if "GET" in k}
    trigger = CertyneoEnvelopeTrigger(
        watched["id"], poll_interval=0.5, known_as_of=seen, end_time=time.time() + 1.8
    )
    event = await first_event(trigger)
    assert event["status"] == "timeout"
    gets_after = {k: v for k, v in certyneo_emulator.control.counters()["requests"].items() if "GET" in k}
    served = sum(gets_after.values()) - sum(gets_before.values())
    assert gets_after["GET /api/v1/envelopes"] - gets_before.get("GET /api/v1/envelopes", 0) >= 2
    assert charged["n"] == served, f"{served} requests served, {charged['n']} paid from the poll budget"
