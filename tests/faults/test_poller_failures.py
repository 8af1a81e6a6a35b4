"""The shared poller fails loudly: whatever stops it reaches every waiting trigger as an ``error`` event
within one poll interval, saying what to fix, and nothing is voided because of it. Passing failures
(Certyneo unavailable) restart it instead.

Real triggers against the emulator; the only thing planted is the bug (a poller method made to raise)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.exceptions import CertyneoServerError
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook
from airflow_provider_certyneo.operators.envelope import CertyneoSendEnvelopeOperator
from airflow_provider_certyneo.triggers.envelope import CertyneoEnvelopeTrigger
from airflow_provider_certyneo.triggers.envelope_set import CertyneoEnvelopeSetTrigger
from airflow_provider_certyneo.triggers.feed import ChangeFeed
from tests.dags.test_operators import START
from tests.support.airflow_runs import run_dag
from tests.support.polling import await_until
from tests.triggers.test_envelope_trigger import SIGNER, first_event

pytestmark = [pytest.mark.faults, pytest.mark.serial]  # timing-sensitive: not in parallel
INTERVAL = 1.0
# "within one poll interval": the interval, plus the event loop's share and the emulator's, measured (the
# server's time answering the waits' reads, from its request log)
LOOP_SLACK = 0.15
LIST = "GET /api/v1/envelopes"


def within(emulator: CertyneoEmulator) -> float:
    """One poll interval and a small slack: the longest the emulator took to answer a read of the waits, by
    its own log, plus the event loop's share."""
    log = emulator.control.requests()
    answering = [e["answeredAt"] - e["at"] for e in log if e["method"] == "GET" and e["answeredAt"]]
    return INTERVAL + LOOP_SLACK + max(answering, default=0.0)


def sent_envelopes(count: int, pdf_file: Path) -> list[tuple[str, str]]:
    """``count`` sent envelopes: (id, updatedAt when sent)."""
    with CertyneoHook() as hook:
        document = hook.upload_document(pdf_file)["id"]
        out = []
        for _ in range(count):
            envelope = hook.create_envelope("Contrat", [document], SIGNER)
            out.append((envelope["id"], hook.send_envelope(envelope["id"])["updatedAt"]))
        return out


def no_deletes(emulator: CertyneoEmulator) -> None:
    requests = emulator.control.counters()["requests"]
    assert not [route for route in requests if route.startswith("DELETE")], requests


async def all_events(triggers: list[CertyneoEnvelopeTrigger]) -> tuple[list[dict[str, Any]], float]:
    started = time.monotonic()
    events = await asyncio.gather(*(first_event(t, within=10) for t in triggers))
    return events, time.monotonic() - started


@pytest.mark.asyncio
async def test_malformed_key_in_the_triggerers_connection(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    malformed = "sk_test_tooshort"
    monkeypatch.setenv("AIRFLOW_CONN_CERTYNEO_BROKEN", certyneo_emulator.connection_json(key=malformed))
    (envelope_id, _), (other, _) = sent_envelopes(2, pdf_file)
    events, took = await all_events(
        [CertyneoEnvelopeTrigger(i, "certyneo_broken", poll_interval=INTERVAL) for i in (envelope_id, other)]
    )
    assert [e["status"] for e in events] == ["error", "error"], events
    assert took <= within(certyneo_emulator), f"{took:.3f} s"
    message = events[0]["message"]
    assert "'certyneo_broken'" in message
    assert "not a Certyneo key" in message
    assert "where the triggerer runs" in message
    assert malformed not in message
    no_deletes(certyneo_emulator)


@pytest.mark.asyncio
async def test_connection_missing_where_the_triggerer_runs(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path
) -> None:
    ((envelope_id, _),) = sent_envelopes(1, pdf_file)
    event, took = await all_events(
        [CertyneoEnvelopeTrigger(envelope_id, "certyneo_only_on_workers", poll_interval=INTERVAL)]
    )
    assert event[0]["status"] == "error"
    assert took <= within(certyneo_emulator), f"{took:.3f} s"
    assert event[0]["message"] == (
        "connection 'certyneo_only_on_workers' is not defined where the triggerer runs: define it in the "
        "triggerer's environment too (the workers have it, the triggerer does not)"
    )


@pytest.mark.asyncio
async def test_a_bug_in_the_poller_reaches_every_waiting_trigger(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The poller lists changes once (the server counts the list request), then the bug is planted: within
    one poll interval of that moment both triggers, and a set trigger, hear of it as an error."""
    envelopes = sent_envelopes(3, pdf_file)
    triggers = [
        CertyneoEnvelopeTrigger(i, poll_interval=INTERVAL, known_as_of=seen) for i, seen in envelopes[:2]
    ]
    bulk = CertyneoEnvelopeSetTrigger(
        [envelopes[2][0]], poll_interval=INTERVAL, known_as_of=envelopes[2][1], end_time=time.time() + 60
    )

    async def set_event() -> dict[str, Any]:
        async for event in bulk.run():
            return dict(event.payload)
        raise AssertionError("no event")

    async def planted(*args: Any, **kwargs: Any) -> bool:
        raise KeyError("planted bug")

    waiting = asyncio.gather(all_events(triggers), asyncio.wait_for(set_event(), 10))
    await await_until(
        lambda: asyncio.to_thread(lambda: certyneo_emulator.control.counters()["requests"].get(LIST)),
        timeout=5,
        interval=0.01,
        what="the poller's first list of changes",
    )
    monkeypatch.setattr(ChangeFeed, "poll", planted)
    injected = time.monotonic()
    events, bulk_event = await waiting
    took = time.monotonic() - injected
    assert [e["status"] for e in events[0]] == ["error", "error"]
    assert bulk_event["status"] == "error", "a broken poller is an error, never a timeout"
    assert took <= within(certyneo_emulator), f"{took:.3f} s after the bug was planted"
    assert certyneo_emulator.control.counters()["requests"][LIST] == 1, "the bug struck at the next round"
    assert "KeyError: 'planted bug'" in events[0][0]["message"]
    assert "bug in airflow-provider-certyneo" in events[0][0]["message"]
    no_deletes(certyneo_emulator)


@pytest.mark.asyncio
async def test_a_passing_failure_restarts_the_poller(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Certyneo unavailable past the hook's retries, once: the poller starts again and the wait goes on."""
    original = ChangeFeed.poll
    calls = {"n": 0}

    async def flaky(self: ChangeFeed, *args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise CertyneoServerError("unavailable", status=503)
        return await original(self, *args)

    monkeypatch.setattr(ChangeFeed, "poll", flaky)
    ((envelope_id, seen),) = sent_envelopes(1, pdf_file)
    trigger = CertyneoEnvelopeTrigger(envelope_id, poll_interval=0.2, known_as_of=seen)

    async def sign_later() -> None:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(certyneo_emulator.control.sign, envelope_id)

    signing = asyncio.create_task(sign_later())
    event = await first_event(trigger, within=15)
    await signing
    assert event["status"] == "success"
    assert calls["n"] >= 2


@pytest.mark.asyncio
async def test_the_poller_is_released_with_the_last_wait(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path
) -> None:
    """A cancelled trigger (the triggerer shutting down) does not leave the poller sleeping out its
    interval with an open HTTP client: the last wait to leave cancels it at once."""
    from airflow_provider_certyneo.triggers.watcher import watcher_for

    ((envelope_id, _),) = sent_envelopes(1, pdf_file)
    trigger = CertyneoEnvelopeTrigger(envelope_id, poll_interval=300)
    waiting = asyncio.create_task(first_event(trigger, within=600))
    await asyncio.sleep(0.5)
    watcher = watcher_for("certyneo_default", 0.5)
    poller = watcher._task
    assert poller is not None
    assert not poller.done()
    waiting.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.wait({poller}, timeout=1.0)
    assert poller.done()
    assert poller.cancelled()
    assert time.monotonic() - started < 1.0
    assert watcher_for("certyneo_default", 0.5) is not watcher, "a released watcher leaves the registry"


def test_void_on_timeout_never_fires_for_a_broken_poller(
    certyneo_emulator: CertyneoEmulator,
    airflow_db: None,
    pdf_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    output: Any,
) -> None:
    """A deferred send with ``void_on_timeout`` whose poller breaks: the task fails with the reason, the
    envelope stays SENT (someone may still sign it)."""

    async def planted(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("planted bug")

    monkeypatch.setattr(ChangeFeed, "poll", planted)
    with CertyneoHook() as hook:
        envelope_id = hook.create_envelope("Contrat", [hook.upload_document(pdf_file)["id"]], SIGNER)["id"]
    with DAG("send_broken_poller", schedule=None, start_date=START) as dag:
        CertyneoSendEnvelopeOperator(
            task_id="send",
            envelope_id=envelope_id,
            wait_for_completion=True,
            deferrable=True,
            poll_interval=0.5,
            timeout=30,
            void_on_timeout=True,
        )
    run = run_dag(dag)
    (ti,) = run.get_task_instances()
    logged = output()  # read once: a second read finds the captured text already consumed
    assert str(ti.state) == "failed"
    assert "planted bug" in logged
    assert "timed out" not in logged
    assert certyneo_emulator.control.envelope(envelope_id)["status"] == "SENT"
    no_deletes(certyneo_emulator)
