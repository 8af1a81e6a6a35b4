"""RFC 3339 round trips, the server clock read from ``Date`` headers, and timestamps compared as instants."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Generator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from airflow_provider_certyneo.bulk.journal import Journal
from airflow_provider_certyneo.bulk.pipeline import already_made
from airflow_provider_certyneo.client import calls
from airflow_provider_certyneo.client.calls import CLOCK_SKEW
from airflow_provider_certyneo.client.outcomes import holding_up
from airflow_provider_certyneo.client.protocol import Answer, ApiCall, Effect, RetryPolicy
from airflow_provider_certyneo.client.timestamps import ServerClock, instant, parse_rfc3339, rfc3339
from airflow_provider_certyneo.hooks.certyneo_async import CertyneoAsyncHook


def test_rfc3339_round_trip() -> None:
    moment = datetime(2026, 11, 28, 17, 5, 3, 123000, tzinfo=timezone.utc)
    assert rfc3339(moment) == "2026-11-28T17:05:03.123Z"
    assert parse_rfc3339(rfc3339(moment)) == moment
    assert parse_rfc3339("2026-11-28T18:05:03+01:00") == moment.replace(microsecond=0)
    with pytest.raises(ValueError, match="known_as_of must be an RFC 3339 timestamp"):
        parse_rfc3339("yesterday", "known_as_of")


def test_server_clock_follows_the_date_header_and_errs_early() -> None:
    clock = ServerClock()
    assert not clock.observed
    received = time.time()
    server = datetime.fromtimestamp(received, timezone.utc) - timedelta(seconds=90)
    clock.observe(format_datetime(server, usegmt=True), received)
    assert clock.observed
    estimate = clock.at(received)
    assert server - timedelta(seconds=1) <= estimate <= server + timedelta(milliseconds=1)
    before = time.time()
    ahead = (clock.now() - estimate).total_seconds()
    after = time.time()
    assert before - received - 0.001 <= ahead <= after - received + 0.001


@pytest.mark.parametrize("header", [None, "", "not a date", "Mon, 99 Foo 2026 25:61:00"])
def test_server_clock_ignores_what_is_not_a_date(header: str | None) -> None:
    clock = ServerClock()
    clock.observe(header, time.time())
    assert not clock.observed
    assert clock.offset == 0.0


# Timestamps are compared as instants: a server that trims a zero fraction writes ``…:00Z``, which sorts
# after ``…:00.500Z`` as text although it is half a second earlier. Each test sits at such a boundary.

WINDOW_START = "2026-11-28T10:00:00.500Z"  # what a search looks back to (its start less the clock skew)
JUST_BEFORE = "2026-11-28T10:00:00Z"  # half a second before it, as a trimming server writes it
JUST_AFTER = "2026-11-28T10:00:00.900Z"


def test_instant_reads_both_shapes_and_tolerates_what_is_not_a_timestamp() -> None:
    assert JUST_BEFORE > WINDOW_START, "the trap: as text the earlier moment sorts later"
    before, start = instant(JUST_BEFORE), instant(WINDOW_START)
    assert before is not None
    assert start is not None
    assert before < start
    assert start - before == timedelta(milliseconds=500)
    assert instant("2026-11-28T11:00:00.500+01:00") == start
    for unreadable in (None, "", "yesterday", "2026-13-45T99:00:00Z", 1764324000):
        assert instant(unreadable) is None


def play(call: Generator[Effect, Answer, Any], answers: list[httpx.Response]) -> Any:
    """Drive a sans-IO call with made-up answers, one per request; what it returned."""
    feed = iter(answers)
    effect = next(call)
    try:
        while True:
            effect = call.send(next(feed) if isinstance(effect, ApiCall) else None)
    except StopIteration as stop:
        return stop.value


def listing(*items: dict[str, Any]) -> httpx.Response:
    request = httpx.Request("GET", "https://certyneo.com/api/v1/x")
    return httpx.Response(200, json={"data": list(items), "nextCursor": None}, request=request)


def test_a_lost_upload_is_not_recovered_as_a_document_from_before_the_window() -> None:
    """The recovery of a lost upload (or a retried task's ``reuse_since``) finds only documents made since
    the call started, less the clock skew: one created half a second earlier is an older upload."""
    since = parse_rfc3339(WINDOW_START) + CLOCK_SKEW
    same = {"filename": "c.pdf", "size": 10, "sha256": "ab"}
    older = {**same, "id": "doc_old", "createdAt": JUST_BEFORE}
    newer = {**same, "id": "doc_new", "createdAt": JUST_AFTER}
    find = partial(calls.find_identical_document, "c.pdf", 10, "ab", since, RetryPolicy())
    assert play(find(), [listing(older)]) is None
    assert play(find(), [listing(newer, older)]) == newer


@pytest.mark.asyncio
async def test_a_resumed_bulk_run_does_not_claim_envelopes_from_before_it_started(tmp_path: Path) -> None:
    """What a retried bulk run takes as its own: envelopes created since it started (less the clock skew),
    not one created half a second before that."""
    journal = Journal(tmp_path / "journal.jsonl")
    journal.started = rfc3339(parse_rfc3339(WINDOW_START) + CLOCK_SKEW)

    def envelope(subject: str, created_at: str) -> dict[str, Any]:
        return {"id": f"env_{subject}", "subject": subject, "recipients": [], "createdAt": created_at}

    class Listing:
        async def list_envelopes(self, updated_since: datetime) -> AsyncIterator[dict[str, Any]]:
            for item in (envelope("ours", JUST_AFTER), envelope("theirs", JUST_BEFORE)):
                yield item

    found = await already_made(cast(CertyneoAsyncHook, Listing()), journal)
    assert [e["id"] for e in found.values()] == ["env_ours"]


def test_whose_turn_since_is_the_latest_signature_as_an_instant() -> None:
    """In SEQUENTIAL order the next signer's turn starts when the last of the earlier signers signed."""
    recipients: list[dict[str, Any]] = [
        {"name": "A", "email": "a@example.com", "order": 1, "status": "SIGNED", "signedAt": JUST_BEFORE},
        {"name": "B", "email": "b@example.com", "order": 1, "status": "SIGNED", "signedAt": JUST_AFTER},
        {"name": "C", "email": "c@example.com", "order": 2, "status": "PENDING", "signedAt": None},
    ]
    envelope: dict[str, Any] = {
        "status": "SENT",
        "signingOrder": "SEQUENTIAL",
        "sentAt": "2026-11-28T09:00:00.000Z",
        "recipients": recipients,
    }
    waiting, since = holding_up(envelope)
    assert [r["name"] for r in waiting] == ["C"]
    assert since == JUST_AFTER
    recipients[1]["signedAt"] = "not a time"
    assert holding_up(envelope)[1] == JUST_BEFORE


@pytest.mark.asyncio
async def test_a_change_just_after_the_known_state_is_logged(
    monkeypatch: pytest.MonkeyPatch, output: Callable[[], str]
) -> None:
    """The waiting trigger skips the progress line of the state its caller already logged (``known_as_of``)
    and logs every later change: one half a second after a trimmed ``…:00Z`` is later, although as text it
    sorts before it (the old text comparison took it for the known state and logged nothing)."""
    from airflow_provider_certyneo.triggers import envelope as module
    from airflow_provider_certyneo.triggers.watcher import Update

    signers: list[dict[str, Any]] = [
        {"name": "A", "email": "a@example.com"},
        {"name": "B", "email": "b@example.com"},
    ]

    def state(status: str, updated_at: str, signed: int) -> dict[str, Any]:
        recipients = [
            {**r, "role": "SIGNER", "status": "SIGNED" if i < signed else "PENDING", "signedAt": updated_at}
            for i, r in enumerate(signers)
        ]
        return {"id": "env_1", "status": status, "updatedAt": updated_at, "recipients": recipients}

    class Watcher:
        async def updates(self, *args: Any) -> AsyncIterator[Update]:
            yield Update(envelope=state("SENT", JUST_BEFORE, 0))  # the state the caller logged
            yield Update(envelope=state("SENT", WINDOW_START, 1))  # half a second later: B's turn
            yield Update(envelope=state("COMPLETED", JUST_AFTER, 2))

    monkeypatch.setattr(module, "watcher_for", lambda *args: Watcher())
    trigger = module.CertyneoEnvelopeTrigger("env_1", poll_interval=1, known_as_of=JUST_BEFORE)
    assert (await trigger.outcome()).status == "success"
    logged = re.findall(r"envelope env_1: (\d of \d signed)", output())
    assert logged == ["1 of 2 signed", "2 of 2 signed"]


def test_the_asset_watcher_forgets_deliveries_older_than_the_overlap_as_instants() -> None:
    """The envelopes the asset watcher delivered are kept only while the next look can list them again
    (within the overlap before its cursor), compared as instants."""
    from airflow_provider_certyneo.triggers.events import still_in_overlap
    from airflow_provider_certyneo.triggers.timing import OVERLAP

    cursor = parse_rfc3339(WINDOW_START) + OVERLAP
    kept = still_in_overlap({"env_old": JUST_BEFORE, "env_new": JUST_AFTER, "env_bad": "?"}, cursor)
    assert kept == {"env_new": JUST_AFTER}
