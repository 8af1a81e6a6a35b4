"""Group commit: deliveries arriving together in one worker are recorded in one transaction, each with the
answer it would have had alone; a batch that fails is recorded one delivery at a time."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Sequence

import pytest

from airflow_provider_certyneo.plugins import claims, inbox
from airflow_provider_certyneo.plugins.group_commit import GroupCommit
from tests.support.polling import await_until
from tests.webhooks.conftest import Receiver
from tests.webhooks.conftest import asset_events as events_on
from tests.webhooks.statements import payload_of, together_statements


@pytest.mark.asyncio
async def test_items_submitted_while_a_batch_is_recorded_share_the_next_batch() -> None:
    release = threading.Event()
    seen: list[list[int]] = []

    def record(items: Sequence[int]) -> list[int]:
        seen.append(list(items))
        if len(seen) == 1:
            release.wait(10)
        return [item * 10 for item in items]

    together: GroupCommit[int, int] = GroupCommit(record, leaders=1)
    first = asyncio.create_task(together.submit(0))
    await await_until(lambda: len(seen) == 1, timeout=5, interval=0.01, what="the first batch")
    rest = [asyncio.create_task(together.submit(i)) for i in range(1, 11)]
    await await_until(lambda: together.waiting() == 10, timeout=5, interval=0.01, what="ten waiting")
    release.set()
    assert await first == 0
    assert await asyncio.gather(*rest) == [i * 10 for i in range(1, 11)]
    assert together.batch_sizes == [1, 10]
    assert sorted(seen[1]) == list(range(1, 11))


@pytest.mark.asyncio
async def test_an_items_exception_is_raised_in_its_own_submitter_only() -> None:
    def record(items: Sequence[int]) -> list[int | Exception]:
        return [ValueError(f"bad {item}") if item == 3 else item for item in items]

    together: GroupCommit[int, int] = GroupCommit(record)
    answers = await asyncio.gather(*(together.submit(i) for i in range(8)), return_exceptions=True)
    assert isinstance(answers[3], ValueError)
    assert str(answers[3]) == "bad 3"
    assert [answers[i] for i in range(8) if i != 3] == [0, 1, 2, 4, 5, 6, 7]


@pytest.mark.asyncio
async def test_no_more_batches_at_once_than_leaders() -> None:
    lock, running, most = threading.Lock(), [0], [0]

    def record(items: Sequence[int]) -> list[int]:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threading.Event().wait(0.01)
        with lock:
            running[0] -= 1
        return list(items)

    together: GroupCommit[int, int] = GroupCommit(record, leaders=2)
    submitters = [together.submit(i) for i in range(200)]
    assert await asyncio.gather(*submitters) == list(range(200))
    assert most[0] == 2, "the two leaders never recorded side by side"
    assert sum(together.batch_sizes) == 200
    assert len(together.batch_sizes) < 200, "no batch held more than one item"


def new_id() -> str:
    return f"evt_{uuid.uuid4().hex[:24]}"


@pytest.fixture
def no_prune(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claims, "PRUNE_EVERY_DELIVERIES", 10**9)
    monkeypatch.setattr(claims, "_next_prune", float("inf"))


def event_ids(outcome: str = "completed") -> list[str]:
    return [extra["payload"]["event_id"] for extra in events_on(outcome)]


def test_a_batch_answers_each_delivery_as_alone_in_one_claim_statement(
    receiver: Receiver, no_prune: None
) -> None:
    known = new_id()
    assert together_statements([("completed", known)])[0] == ["recorded"]
    a, b, c, declined = new_id(), new_id(), new_id(), new_id()
    completed = [("completed", event_id) for event_id in (a, b, a, known)]
    batch = [*completed, ("declined", declined), ("completed", c)]
    answers, statements = together_statements(batch)
    assert answers == ["recorded", "recorded", "duplicate", "duplicate", "no_consumer", "recorded"]
    ids = event_ids()
    assert [ids.count(event_id) for event_id in (known, a, b, c)] == [1, 1, 1, 1]
    assert declined not in event_ids("declined")
    claims_inserted = [s for s in statements if s.lower().startswith(f"insert into {claims.TABLE_NAME}")]
    assert len(claims_inserted) == 1, claims_inserted  # one statement claims the whole batch
    assert sum(s.lower().startswith("commit") for s in statements) <= 1


def test_a_failing_batch_is_recorded_one_at_a_time_the_bad_delivery_alone_failing(
    receiver: Receiver, no_prune: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad, also_good = new_id(), new_id(), new_id()
    payloads = {event_id: payload_of(event_id) for event_id in (good, also_good)}
    payloads[bad] = {**payload_of(bad), "unstorable": object()}  # its inbox row cannot be written
    batch = [inbox.Delivery("certyneo_default", "completed", payloads[e]) for e in (good, bad, also_good)]
    answers = inbox.record_batch(batch)
    assert answers[0] == answers[2] == "recorded"
    assert isinstance(answers[1], TypeError)
    ids = event_ids()
    assert (ids.count(good), ids.count(bad), ids.count(also_good)) == (1, 0, 1)
    # the bad one left no claim behind: Certyneo's retry of it is recorded
    retry = inbox.Delivery("certyneo_default", "completed", payload_of(bad))
    assert inbox.record_batch([retry]) == ["recorded"]
    assert event_ids().count(bad) == 1
