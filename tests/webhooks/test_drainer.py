"""The drainer: what a delivery recorded becomes one asset event a moment after its answer, whatever fails
in between — a registration that raises, a batch that fails, a worker gone before draining — and a claim
whose event is still in the inbox is never pruned (this session's SQLite database, the receiver's drainer
thread in this process)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_certyneo.plugins import claims, drainer, inbox
from airflow_provider_certyneo.plugins.drainer import DEADLINE_SECONDS, QUIET_SECONDS, seconds_to_hold
from tests.support.polling import wait_until
from tests.webhooks.conftest import Receiver, asset_events, delivery, inbox_size, sign
from tests.webhooks.history import URI
from tests.webhooks.statements import payload_of

# registering with Airflow's asset manager from a thread of the API server: checked on the oldest Airflow too
pytestmark = pytest.mark.smoke


def event_ids() -> list[str]:
    return [extra["payload"]["event_id"] for extra in asset_events()]


def new_id() -> str:
    return f"evt_{uuid.uuid4().hex[:24]}"


def in_inbox(event_id: str) -> bool:
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return (
            session.scalar(select(claims.INBOX.c.event_id).where(claims.INBOX.c.event_id == event_id))
            is not None
        )


def test_a_pass_waits_for_a_quiet_moment_or_the_deadline() -> None:
    assert seconds_to_hold(10.0, last_recorded=0.0, pending_since=None) == 0.0  # nothing recorded: poll
    assert seconds_to_hold(10.0, last_recorded=10.0, pending_since=10.0) == pytest.approx(QUIET_SECONDS)
    assert seconds_to_hold(10.0, last_recorded=9.0, pending_since=9.0) == 0.0  # quiet for a second
    # deliveries still arriving, the oldest undrained one near its deadline: only what is left of it
    assert seconds_to_hold(10.0, last_recorded=10.0, pending_since=10.0 - DEADLINE_SECONDS + 0.01) == (
        pytest.approx(0.01)
    )
    assert seconds_to_hold(10.0, last_recorded=10.0, pending_since=10.0 - DEADLINE_SECONDS) == 0.0


def test_a_delivery_is_answered_once_recorded_and_registered_by_the_drainer_after(receiver: Receiver) -> None:
    body = delivery()
    event_id = json.loads(body)["id"]
    with drainer.held():
        assert receiver.post(body, sign(body)).json()["status"] == "recorded"
        assert in_inbox(event_id), "answered before it was recorded"
        assert receiver.post(body, sign(body)).json()["status"] == "duplicate"
    assert event_ids().count(event_id) == 1


def test_a_registration_that_fails_leaves_its_event_in_the_inbox_and_the_others_go_on(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.assets.manager import asset_manager

    good, bad, also_good = new_id(), new_id(), new_id()
    register = asset_manager.register_asset_change

    def failing(**kwargs: Any) -> Any:
        if kwargs["extra"]["payload"]["event_id"] == bad:
            raise RuntimeError("the database refused this one")
        return register(**kwargs)

    failed: dict[tuple[str, str], float] = {}
    with drainer.held():
        for event_id in (good, bad, also_good):
            assert inbox.record_one("certyneo_default", "completed", payload_of(event_id)) == "recorded"
        monkeypatch.setattr(asset_manager, "register_asset_change", failing)
        assert drainer.drain_pass(failed) == 2
        assert list(failed) == [(URI, bad)], "the failing row is not set aside"
        assert [in_inbox(event_id) for event_id in (good, bad, also_good)] == [False, True, False]
        assert drainer.drain_pass(failed) == 0, "a row that failed alone is tried again at once"
        monkeypatch.setattr(asset_manager, "register_asset_change", register)
        failed[(URI, bad)] = 0.0  # its retry is due
        assert drainer.drain_pass(failed) == 1
    ids = event_ids()
    assert (ids.count(good), ids.count(bad), ids.count(also_good)) == (1, 1, 1)


def test_a_pass_that_cannot_register_anything_raises_and_drains_nothing(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.assets.manager import asset_manager

    def away(**kwargs: Any) -> Any:
        raise ConnectionError("the database is away")

    event_id = new_id()
    register = asset_manager.register_asset_change
    with drainer.held():
        assert inbox.record_one("certyneo_default", "completed", payload_of(event_id)) == "recorded"
        monkeypatch.setattr(asset_manager, "register_asset_change", away)
        with pytest.raises(ConnectionError):
            drainer.drain_pass({})
        assert in_inbox(event_id), "a rolled-back pass lost the event"
        monkeypatch.setattr(asset_manager, "register_asset_change", register)
    assert event_ids().count(event_id) == 1


@pytest.mark.slow
def test_what_a_worker_recorded_and_did_not_drain_is_drained_by_the_next(receiver: Receiver) -> None:
    """A worker that stops between answering and draining (here: recording with no pass after it) leaves
    its rows in the inbox; a drainer's periodic pass takes them."""
    from airflow.utils.session import create_session
    from sqlalchemy import insert

    event_id = new_id()
    row = {
        "asset_uri": URI,
        "event_id": event_id,
        "payload": json.dumps(payload_of(event_id)),
        "received_at": datetime.now(timezone.utc) - timedelta(minutes=5),
    }
    with create_session() as session:  # as a stopped worker left it: no wake-up for this process's drainer
        session.execute(
            insert(claims.CLAIMS).values(asset_uri=URI, event_id=event_id, received_at=row["received_at"])
        )
        session.execute(insert(claims.INBOX).values(**row))
    wait_until(lambda: not in_inbox(event_id), timeout=drainer.POLL_SECONDS + 10, what="a periodic pass")
    assert event_ids().count(event_id) == 1


@pytest.mark.slow
def test_a_claim_whose_event_is_still_in_the_inbox_is_never_pruned(receiver: Receiver) -> None:
    from airflow.utils.session import create_session
    from sqlalchemy import insert, select

    old = datetime.now(timezone.utc) - claims.DEDUPE_WINDOW - timedelta(days=1)
    pending, done = new_id(), new_id()
    with drainer.held():
        with create_session() as session:
            for event_id in (pending, done):
                session.execute(
                    insert(claims.CLAIMS).values(asset_uri=URI, event_id=event_id, received_at=old)
                )
            payload = json.dumps(payload_of(pending))
            session.execute(
                insert(claims.INBOX).values(asset_uri=URI, event_id=pending, payload=payload, received_at=old)
            )
        with create_session() as session:
            claims.prune_claims(session, datetime.now(timezone.utc) - claims.DEDUPE_WINDOW)
        with create_session() as session:
            left = set(
                session.scalars(
                    select(claims.CLAIMS.c.event_id).where(claims.CLAIMS.c.event_id.in_([pending, done]))
                )
            )
    assert left == {pending}, (
        "a claim was pruned while its event waited in the inbox (a replay would record it again)"
    )
    assert inbox_size() == 0 or wait_until(lambda: inbox_size() == 0, timeout=15, what="the drain")
