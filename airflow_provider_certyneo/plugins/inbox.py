"""Recording a verified Certyneo event, once: a claim row keyed by its event id and an inbox row holding its
payload, committed together before the delivery is answered.

Duplicates (Certyneo's retries, replays, two API-server workers given the same delivery) are told apart by
the claim (:mod:`.claims`), inserted first in the transaction: the database's primary key lets exactly one
insert win, and the others are answered ``duplicate`` with nothing recorded — after the winner commits
(PostgreSQL and MySQL make a second insert of an uncommitted key wait for the first transaction; SQLite runs
one writer at a time). If the winner rolls back, its claim goes with it and a waiting copy records the
event. No delivery reads the asset's history and none locks the asset's row: a delivery costs the same at
20,000 events as at none. A restart changes nothing: claims and inbox are in the database.

What a delivery costs stops there: two inserts and a commit. Registering the asset event (Airflow's asset
manager: several ORM statements, listeners, the consuming DAGs' queue) is the drainer's work
(:mod:`.drainer`), a moment later, so Certyneo's deliveries are answered at the rate the database takes
inserts, and a burst is absorbed rather than timed out and retried. ``recorded`` therefore means: in the
metadata database, exactly once, and registered as an asset event a moment later (50 ms after a lone
delivery, seconds after a burst).

Deliveries arriving together in one worker share one transaction (:func:`record_together`, a
:class:`~.group_commit.GroupCommit`): their claims are inserted in one statement that skips the event ids
already claimed (``ON CONFLICT DO NOTHING … RETURNING`` on PostgreSQL and SQLite; a savepoint per claim
elsewhere), in event-id order, so two batches claiming the same ids take their locks in the same order and
never deadlock; then one statement puts the new ones in the inbox, then one commit answers them all. A batch
that fails is recorded again one delivery at a time, so one bad delivery costs the others nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_certyneo.assets import asset_uri
from airflow_provider_certyneo.plugins import drainer
from airflow_provider_certyneo.plugins.asset_events import asset_name
from airflow_provider_certyneo.plugins.claims import (
    CLAIMS,
    DEDUPE_WINDOW,
    INBOX,
    ensure_claim_table,
    prune_claims,
    prune_due,
)
from airflow_provider_certyneo.plugins.group_commit import GroupCommit

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """A verified event to record: on the asset of ``conn_id`` and ``outcome``, with this payload."""

    conn_id: str
    outcome: str
    payload: dict[str, Any]


def record_batch(deliveries: Sequence[Delivery]) -> list[str | Exception]:
    """Each delivery's answer — ``recorded``, ``duplicate`` (its event id is already recorded on the asset)
    or ``no_consumer`` (no DAG is scheduled on the asset, so Airflow does not know it) — the new ones
    recorded in one transaction; if that fails, each delivery in a transaction of its own (its answer, or
    its exception)."""
    try:
        return list(_record_in_one_transaction(deliveries))
    except Exception:
        if len(deliveries) == 1:
            raise
        log.debug("a batch of %d Certyneo webhook deliveries is recorded one at a time", len(deliveries))
    answers: list[str | Exception] = []
    for delivery in deliveries:
        try:
            answers.extend(_record_in_one_transaction([delivery]))
        except Exception as exc:  # noqa: BLE001 - raised in the thread that submitted this delivery
            answers.append(exc)
    return answers


def _record_in_one_transaction(deliveries: Sequence[Delivery]) -> list[str]:
    from airflow.utils.session import create_session
    from sqlalchemy import insert

    now = datetime.now(timezone.utc)
    keys = [(asset_uri(d.conn_id, d.outcome), d.payload["event_id"]) for d in deliveries]
    first_of: dict[tuple[str, str], int] = {}  # (asset URI, event id) -> the batch's first delivery of it
    for i, key in enumerate(keys):
        first_of.setdefault(key, i)
    fate: dict[tuple[str, str], str] = {}
    with create_session() as session:
        ensure_claim_table(session.get_bind())
        # the assets Airflow knows (a DAG is scheduled on them), by URI: each looked up once
        known_uris = {uri for uri in {uri for uri, _ in first_of} if asset_name(session, uri) is not None}
        known = {key for key in first_of if key[0] in known_uris}
        fate.update((key, "no_consumer") for key in first_of if key not in known)
        claimed = claim(session, sorted(known), now)
        fate.update((key, "duplicate") for key in known - claimed)
        fate.update((key, "recorded") for key in claimed)
        if claimed:
            rows = [
                {
                    "asset_uri": uri,
                    "event_id": event_id,
                    "payload": json.dumps(deliveries[first_of[(uri, event_id)]].payload),
                    "received_at": now,
                }
                for uri, event_id in sorted(claimed)
            ]
            session.execute(insert(INBOX), rows)
    if claimed:
        drainer.recorded()
        prune_if_due(now, len(claimed))
    # a copy of an event within the batch is a duplicate of its first, which has the event's fate
    return [
        fate[key] if first_of[key] == i or fate[key] != "recorded" else "duplicate"
        for i, key in enumerate(keys)
    ]


def claim(session: Session, keys: list[tuple[str, str]], now: datetime) -> set[tuple[str, str]]:
    """Inserts a claim for each (asset URI, event id) of ``keys`` (in their order) that none holds yet;
    returns those inserted. One statement on PostgreSQL and SQLite; a savepoint per claim elsewhere."""
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    if not keys:
        return set()
    rows = [{"asset_uri": uri, "event_id": event_id, "received_at": now} for uri, event_id in keys]
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        from sqlalchemy.dialects import postgresql, sqlite

        upsert = postgresql.insert(CLAIMS) if dialect == "postgresql" else sqlite.insert(CLAIMS)
        statement = (
            upsert.values(rows).on_conflict_do_nothing().returning(CLAIMS.c.asset_uri, CLAIMS.c.event_id)
        )
        return {(uri, event_id) for uri, event_id in session.execute(statement)}
    claimed: set[tuple[str, str]] = set()
    for key, row in zip(keys, rows, strict=True):
        try:
            with session.begin_nested():
                session.execute(insert(CLAIMS).values(**row))
        except IntegrityError:
            continue
        claimed.add(key)
    return claimed


def prune_if_due(now: datetime, recorded: int = 1) -> None:
    """Counts ``recorded`` deliveries and, every so often, deletes a bounded batch of expired claims."""
    from airflow.utils.session import create_session

    if not prune_due(recorded):
        return
    try:
        with create_session() as session:
            pruned = prune_claims(session, now - DEDUPE_WINDOW)
        log.debug("pruned %d Certyneo webhook claims older than %s", pruned, DEDUPE_WINDOW)
    except Exception:  # the events are recorded: a failed clean-up is retried at the next prune
        log.exception("could not prune old Certyneo webhook claims")


_together: GroupCommit[Delivery, str] = GroupCommit(record_batch)


async def record_together(conn_id: str, outcome: str, payload: dict[str, Any]) -> str:
    """The delivery's answer (as :func:`record_batch`'s), recorded in the same transaction as the
    deliveries arriving meanwhile in this process (in one of the group's threads: the event loop waits)."""
    return await _together.submit(Delivery(conn_id, outcome, payload))


def record_one(conn_id: str, outcome: str, payload: dict[str, Any]) -> str:
    """One delivery's answer, recorded in a transaction of its own (tests and tools)."""
    (answer,) = _record_in_one_transaction([Delivery(conn_id, outcome, payload)])
    return answer
