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
"""

from __future__ import annotations

import logging
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
    if prune_due():
        try:
            with create_session() as session:
                pruned = prune_claims(session, now - DEDUPE_WINDOW)
            log.debug("pruned %d Certyneo webhook claims older than %s", pruned, DEDUPE_WINDOW)
        except Exception:  # the event is recorded: a failed clean-up is retried at the next prune
            log.exception("could not prune old Certyneo webhook claims")
    return "recorded"
