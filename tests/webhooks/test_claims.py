"""The receiver's cost per delivery does not depend on history: with 20,000 recorded deliveries, a new
delivery and a duplicate run the same statements as with none, none of which reads the asset's events or
scans the claims; and old claims are pruned a bounded batch at a time (this session's SQLite database)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_certyneo.emulator.config import EmulatorConfig
from airflow_provider_certyneo.plugins import claims
from airflow_provider_certyneo.plugins.receiver import TOLERANCE_SECONDS
from tests.webhooks.conftest import Receiver, asset_events, delivery, sign
from tests.webhooks.history import URI, add_history
from tests.webhooks.statements import delivery_statements

HISTORY = 20_000


def reads_history(statement: str) -> bool:
    """A statement that reads the asset's events or the claims (an INSERT's own key check aside)."""
    text = statement.lower()
    return not text.startswith("insert") and ("asset_event" in text or claims.TABLE_NAME in text)


@pytest.fixture
def no_prune(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claims, "PRUNE_EVERY_DELIVERIES", 10**9)
    monkeypatch.setattr(claims, "_next_prune", float("inf"))


@pytest.fixture
def history(receiver: Receiver) -> Iterator[list[str]]:
    """20,000 recorded deliveries, removed afterwards (other tests of this process count asset events)."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        ids = add_history(session, HISTORY)
    yield ids
    with create_session() as session:
        session.execute(delete(claims.CLAIMS).where(claims.CLAIMS.c.event_id.like("evt_history_%")))
        session.execute(
            delete(AssetEvent).where(
                AssetEvent.extra["payload"]["event_id"].as_string().like("evt_history_%")
            )
        )


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex[:24]}"


@pytest.mark.slow
def test_a_delivery_runs_the_same_statements_with_20000_events_of_history(
    receiver: Receiver, no_prune: None, request: pytest.FixtureRequest
) -> None:
    assert delivery_statements(new_event_id())[0] == "recorded"  # warm: the claim table exists
    fresh = new_event_id()
    new_before, duplicate_before = delivery_statements(fresh), delivery_statements(fresh)
    assert (new_before[0], duplicate_before[0]) == ("recorded", "duplicate")

    old_ids = request.getfixturevalue("history")
    fresh = new_event_id()
    new_after, duplicate_after = delivery_statements(fresh), delivery_statements(fresh)
    assert (new_after[0], duplicate_after[0]) == ("recorded", "duplicate")
    assert delivery_statements(old_ids[-1])[0] == "duplicate", "a delivery already in the history"

    assert new_after[1] == new_before[1], "a new delivery's statements changed with history"
    assert duplicate_after[1] == duplicate_before[1], "a duplicate's statements changed with history"
    assert len(new_after[1]) <= 12, new_after[1]
    assert len(duplicate_after[1]) <= 2, duplicate_after[1]
    for statement in new_after[1] + duplicate_after[1]:
        assert not reads_history(statement), f"a delivery reads the history: {statement}"


@pytest.mark.slow
def test_new_and_duplicate_deliveries_over_http_with_20000_events_of_history(
    receiver: Receiver, history: list[str]
) -> None:
    body = delivery()
    count = len(asset_events())
    assert receiver.post(body, sign(body)).json()["status"] == "recorded"
    assert receiver.post(body, sign(body)).json()["status"] == "duplicate"
    assert len(asset_events()) == count + 1


def test_old_claims_are_pruned_a_bounded_batch_at_a_time(receiver: Receiver) -> None:
    from airflow import settings
    from airflow.utils.session import create_session
    from sqlalchemy import func, insert, select

    assert settings.engine is not None
    now = datetime.now(timezone.utc)
    table = claims.CLAIMS
    claims.ensure_claim_table(settings.engine)
    old = [
        {
            "asset_uri": URI,
            "event_id": f"evt_prune_old_{i}",
            "received_at": now - timedelta(days=4, seconds=i),
        }
        for i in range(250)
    ]
    recent = [{"asset_uri": URI, "event_id": f"evt_prune_new_{i}", "received_at": now} for i in range(10)]
    with create_session() as session:
        session.execute(insert(table), old + recent)
    pruned = []
    for _ in range(4):
        with create_session() as session:
            pruned.append(claims.prune_claims(session, now - claims.DEDUPE_WINDOW, batch=100))
    assert pruned == [100, 100, 50, 0]
    with create_session() as session:
        left = session.scalar(select(func.count()).where(table.c.event_id.like("evt_prune_%")))
    assert left == 10, "a claim inside the window was pruned"


def test_recording_prunes_every_so_many_deliveries(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.session import create_session
    from sqlalchemy import insert, select

    monkeypatch.setattr(claims, "PRUNE_EVERY_DELIVERIES", 3)
    monkeypatch.setattr(claims, "_next_prune", float("inf"))
    monkeypatch.setattr(claims, "_since_prune", 0)
    expired = {
        "asset_uri": URI,
        "event_id": f"evt_expired_{uuid.uuid4().hex}",
        "received_at": datetime.now(timezone.utc) - claims.DEDUPE_WINDOW - timedelta(minutes=1),
    }
    with create_session() as session:
        session.execute(insert(claims.CLAIMS), [expired])

    def still_there() -> bool:
        with create_session() as session:
            query = select(claims.CLAIMS.c.event_id).where(claims.CLAIMS.c.event_id == expired["event_id"])
            return session.scalar(query) is not None

    for _ in range(2):
        assert delivery_statements(new_event_id())[0] == "recorded"
    assert still_there(), "pruned before its turn"
    assert delivery_statements(new_event_id())[0] == "recorded"
    assert not still_there(), "the third delivery did not prune the expired claim"


def test_the_dedupe_window_outlasts_the_replay_tolerance_and_certyneos_retries() -> None:
    config = EmulatorConfig()
    retries = sum(config.webhook_backoff * 2**attempt for attempt in range(config.webhook_attempts - 1))
    # an event is accepted from TOLERANCE before its createdAt to TOLERANCE after, retries included
    horizon = timedelta(seconds=2 * TOLERANCE_SECONDS + retries)
    assert horizon <= claims.DEDUPE_WINDOW, f"a claim must outlive {horizon}: a replay would be recorded"


def test_an_overlong_event_id_is_refused_not_a_server_error(receiver: Receiver) -> None:
    import json

    event = json.loads(delivery())
    event["id"] = "evt_" + "x" * claims.EVENT_ID_MAX
    body = json.dumps(event).encode()
    answer = receiver.post(body, sign(body))
    assert answer.status_code == 400, answer.text
    assert "id" in answer.json()["error"]
