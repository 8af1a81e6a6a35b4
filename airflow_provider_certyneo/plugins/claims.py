"""The webhook receiver's two tables: ``certyneo_webhook_claim``, one row per (asset, event id) recorded, and
``certyneo_webhook_inbox``, one row per recorded event not yet registered as an asset event.

A provider-owned table in Airflow's metadata database, created on first use (``create_all`` with
``checkfirst``, as the edge3 provider creates its own tables; no Airflow migration knows it). Its primary
key (``asset_uri``, ``event_id``) is what makes a delivery exact: the receiver inserts its claim in the same
transaction as the asset event, and the database's unique key lets one insert of an event id win, whatever
the number of API-server workers or restarts. Nothing reads it but the key lookup the insert itself makes,
so a delivery costs the same with a month of history as with none.

The inbox holds what a delivery recorded (its payload, as JSON) until a drainer (:mod:`.drainer`) registers
it as an asset event and deletes the row, in one transaction: rows live for moments, so it stays small
whatever the history. Its key is the claim's, so a claim whose event is still in the inbox is never pruned.

Claims older than :data:`DEDUPE_WINDOW` are deleted a bounded batch at a time (:func:`prune_claims`, on the
``received_at`` index), every :data:`PRUNE_EVERY_DELIVERIES` recorded deliveries of a process or
:data:`PRUNE_EVERY_SECONDS`, whichever comes first, so the table holds about one window of deliveries.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from airflow.utils.sqlalchemy import UtcDateTime
from sqlalchemy import Column, Index, MetaData, String, Table, Text, delete, exists, inspect, select
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.orm import Session

TABLE_NAME = "certyneo_webhook_claim"
INBOX_TABLE_NAME = "certyneo_webhook_inbox"
# The receiver refuses deliveries whose createdAt is more than 5 minutes off its clock (replays), and
# Certyneo retries a failed delivery "a few times, with backoff": a claim is only needed for minutes. Three
# days leaves room for clock skew, for a receiver refusing deliveries while it is down, and for Certyneo's
# retries lasting longer than documented, at the cost of three days of rows (tens of bytes each).
DEDUPE_WINDOW = timedelta(days=3)
PRUNE_BATCH = 1000
# A prune deletes up to PRUNE_BATCH claims per PRUNE_EVERY_DELIVERIES deliveries: twice the rate they are
# made, so expired claims never pile up, even after a pause.
PRUNE_EVERY_DELIVERIES = 500
PRUNE_EVERY_SECONDS = 600.0
EVENT_ID_MAX = 250
URI_MAX = 300  # certyneo:// + a connection id (250 at most in Airflow) + /envelopes/completed


METADATA = MetaData()
CLAIMS = Table(
    TABLE_NAME,
    METADATA,
    # 300 + 250 characters: the key stays within MySQL's 3,072-byte index limit in utf8mb4
    Column("asset_uri", String(URI_MAX), primary_key=True),
    Column("event_id", String(EVENT_ID_MAX), primary_key=True),
    Column("received_at", UtcDateTime(), nullable=False),
    Index(f"idx_{TABLE_NAME}_received_at", "received_at"),
)
INBOX = Table(
    INBOX_TABLE_NAME,
    METADATA,
    Column("asset_uri", String(URI_MAX), primary_key=True),
    Column("event_id", String(EVENT_ID_MAX), primary_key=True),
    Column("payload", Text(), nullable=False),  # the asset event's payload, JSON
    Column("received_at", UtcDateTime(), nullable=False),
    Index(f"idx_{INBOX_TABLE_NAME}_received_at", "received_at"),  # drained oldest first
)

_lock = threading.Lock()
_ready_for: set[int] = set()  # the engines (by id) known to hold the table
_since_prune = 0
_next_prune = 0.0


def ensure_claim_table(engine: Engine | Connection) -> None:
    """Creates the tables and their indexes where missing: once per process (and engine). Two processes
    creating them at the same moment is fine: the loser's error is ignored once the table is seen to exist."""
    if id(engine) in _ready_for:
        return
    with _lock:
        if id(engine) in _ready_for:
            return
        try:
            METADATA.create_all(engine, checkfirst=True)
        except SQLAlchemyError:
            if not inspect(engine).has_table(TABLE_NAME):
                raise
        _ready_for.add(id(engine))


def tables_exist(engine: Engine | Connection) -> bool:
    """True once the tables exist (checked until then: a deployment receiving no webhooks gets none)."""
    if id(engine) in _ready_for:
        return True
    if not inspect(engine).has_table(INBOX_TABLE_NAME):
        return False
    ensure_claim_table(engine)
    return True


def prune_due(recorded: int = 1) -> bool:
    """Counts ``recorded`` deliveries; True (and the counters restart) when this process should prune."""
    global _since_prune, _next_prune
    with _lock:
        _since_prune += recorded
        now = time.monotonic()
        if _since_prune < PRUNE_EVERY_DELIVERIES and now < _next_prune:
            return False
        _since_prune = 0
        _next_prune = now + PRUNE_EVERY_SECONDS
        return True


def prune_claims(session: Session, before: datetime, batch: int = PRUNE_BATCH) -> int:
    """Deletes the oldest claims received before ``before``, about ``batch`` of them at most (more only when
    several share the batch's last timestamp), except those whose event is still in the inbox. Two
    statements on the ``received_at`` index, on every database (MySQL refuses ``LIMIT`` in a ``DELETE``'s
    subquery, PostgreSQL a ``DELETE … LIMIT``)."""
    received_at = CLAIMS.c.received_at
    last = session.scalar(
        select(received_at).where(received_at < before).order_by(received_at).offset(batch - 1).limit(1)
    )
    condition = received_at < before if last is None else received_at <= last
    pending = exists().where(INBOX.c.asset_uri == CLAIMS.c.asset_uri, INBOX.c.event_id == CLAIMS.c.event_id)
    result = session.execute(delete(CLAIMS).where(condition, ~pending))
    return int(getattr(result, "rowcount", 0) or 0)
