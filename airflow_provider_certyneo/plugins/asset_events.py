"""Recording a verified Certyneo event as an asset event, once, from inside the API server.

The plugin already runs in the API server, which holds a metadata-database session, so it registers the
event with Airflow's asset manager — as the public ``POST /api/v2/assets/events`` route does internally —
rather than calling that route over HTTP with a token it would have to be given and to keep secret. The
same call exists on every supported version (3.1 to 3.3).

Duplicates (Certyneo's retries, replays, two API-server workers given the same delivery) are told apart by
a claim row keyed by the event id (:mod:`.claims`), inserted first in the transaction that registers the
asset event: the database's primary key lets exactly one insert win, and the others fail with an integrity
error — after the winner commits (PostgreSQL and MySQL make a second insert of an uncommitted key wait for
the first transaction; SQLite runs one writer at a time) — and are answered ``duplicate`` with nothing
registered. If the winner rolls back, its claim goes with it and a waiting copy records the event. No
delivery reads the asset's history and none locks the asset's row: a delivery costs the same at 20,000
events as at none, and deliveries of different events proceed side by side. A restart changes nothing:
the claims are in the database.

Deliveries arriving together in one worker share one transaction (:func:`record_together`, a
:class:`~.group_commit.GroupCommit`): their claims are inserted in one statement that skips the event ids
already claimed (``ON CONFLICT DO NOTHING … RETURNING`` on PostgreSQL and SQLite; a savepoint per claim
elsewhere), in event-id order, so two batches claiming the same ids take their locks in the same order and
never deadlock; then each new event is registered, then one commit answers them all. A batch that fails is
recorded again one delivery at a time, as before, so one bad delivery costs the others nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_certyneo.assets import asset_uri
from airflow_provider_certyneo.plugins.claims import (
    CLAIMS,
    DEDUPE_WINDOW,
    ensure_claim_table,
    prune_claims,
    prune_due,
)
from airflow_provider_certyneo.plugins.group_commit import GroupCommit

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
_names: dict[str, str] = {}  # asset URI -> the name Airflow knows it by (Asset(uri) is named by its URI)


@dataclass(frozen=True)
class AssetUniqueKey:
    """What the asset manager looks an asset up by (its own class differs between Airflow versions)."""

    name: str
    uri: str


def asset_name(session: Session, uri: str) -> str | None:
    """The name of the asset with ``uri`` (the oldest, if several share it), or None: Airflow does not know
    it, since no DAG is scheduled on it. Cached per process: the asset manager checks it exists anyway."""
    from airflow.models.asset import AssetModel
    from sqlalchemy import select

    if uri not in _names:
        name = session.scalar(
            select(AssetModel.name).where(AssetModel.uri == uri).order_by(AssetModel.id).limit(1)
        )
        if name is None:
            return None
        _names[uri] = name
    return _names[uri]


def record_asset_event(conn_id: str, outcome: str, payload: dict[str, Any]) -> str:
    """``recorded``, ``duplicate`` (this event id was already recorded on the asset), or ``no_consumer`` (no
    DAG is scheduled on the asset, so Airflow does not know it)."""
    from airflow.assets.manager import asset_manager
    from airflow.utils.session import create_session
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    uri = asset_uri(conn_id, outcome)
    now = datetime.now(timezone.utc)
    with create_session() as session:
        ensure_claim_table(session.get_bind())
        try:  # first statement of the transaction: on SQLite it takes the write lock before any read
            session.execute(
                insert(CLAIMS).values(asset_uri=uri, event_id=payload["event_id"], received_at=now)
            )
        except IntegrityError:
            session.rollback()
            return "duplicate"
        name = asset_name(session, uri)
        recorded = name is not None and asset_manager.register_asset_change(
            asset=AssetUniqueKey(name=name, uri=uri),  # type: ignore[arg-type]  # read: .name and .uri
            extra={"payload": payload},
            session=session,
        )
        if not recorded:
            _names.pop(uri, None)  # the asset may have gone since it was cached: looked up afresh next time
            session.rollback()  # no claim either: the event is recorded once a DAG uses the asset
            return "no_consumer"
    prune_if_due(now)
    return "recorded"


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


@dataclass(frozen=True)
class Delivery:
    """A verified event to record: ``record_asset_event``'s arguments."""

    conn_id: str
    outcome: str
    payload: dict[str, Any]


class AssetGone(Exception):
    """The asset manager no longer knows an asset this process had cached: the batch is recorded again one
    delivery at a time, which looks the asset up afresh."""


def record_batch(deliveries: Sequence[Delivery]) -> list[str | Exception]:
    """Each delivery's answer (as :func:`record_asset_event`'s), the new ones recorded in one transaction;
    if that transaction fails, each delivery in a transaction of its own (its answer, or its exception)."""
    try:
        return list(_record_in_one_transaction(deliveries))
    except Exception:  # noqa: BLE001 - whatever failed, one at a time isolates it
        log.debug("a batch of %d Certyneo webhook deliveries is recorded one at a time", len(deliveries))
    answers: list[str | Exception] = []
    for delivery in deliveries:
        try:
            answers.append(record_asset_event(delivery.conn_id, delivery.outcome, delivery.payload))
        except Exception as exc:  # noqa: BLE001 - raised in the thread that submitted this delivery
            answers.append(exc)
    return answers


def _record_in_one_transaction(deliveries: Sequence[Delivery]) -> list[str]:
    from airflow.assets.manager import asset_manager
    from airflow.utils.session import create_session

    now = datetime.now(timezone.utc)
    keys = [(asset_uri(d.conn_id, d.outcome), d.payload["event_id"]) for d in deliveries]
    first_of: dict[tuple[str, str], int] = {}  # (asset URI, event id) -> the batch's first delivery of it
    for i, key in enumerate(keys):
        first_of.setdefault(key, i)
    fate: dict[tuple[str, str], str] = {}
    with create_session() as session:
        ensure_claim_table(session.get_bind())
        # the assets Airflow knows (a DAG is scheduled on them), by URI: each looked up once
        looked_up = {uri: asset_name(session, uri) for uri in {uri for uri, _ in first_of}}
        names = {uri: name for uri, name in looked_up.items() if name is not None}
        known = {key for key in first_of if key[0] in names}
        fate.update((key, "no_consumer") for key in first_of if key not in known)
        claimed = claim(session, sorted(known), now)
        fate.update((key, "duplicate") for key in known - claimed)
        for key in sorted(claimed):
            if not asset_manager.register_asset_change(
                asset=AssetUniqueKey(name=names[key[0]], uri=key[0]),  # type: ignore[arg-type]  # read: .name and .uri
                extra={"payload": deliveries[first_of[key]].payload},
                session=session,
            ):
                _names.pop(key[0], None)
                raise AssetGone(key[0])
            fate[key] = "recorded"
    if claimed:
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


_together: GroupCommit[Delivery, str] = GroupCommit(record_batch)


def record_together(conn_id: str, outcome: str, payload: dict[str, Any]) -> str:
    """:func:`record_asset_event`'s answer, with the deliveries arriving meanwhile in this process recorded
    in the same transaction (blocking: run in a worker thread)."""
    return _together.submit(Delivery(conn_id, outcome, payload))
