"""The drainer: a thread in each API-server worker that registers the inbox's events as asset events.

A delivery is recorded (claim and inbox row, :mod:`.inbox`) and answered; this thread registers it with
Airflow's asset manager and deletes its inbox row in one transaction, so each recorded event becomes one
asset event: a drainer that dies mid-way rolls back and its rows wait for the next pass, in this worker or
another. Several drainers (one per API-server worker) share the inbox: on PostgreSQL and MySQL each takes
rows the others have not locked (``FOR UPDATE SKIP LOCKED``); on SQLite a pass's first statement takes the
database's write lock, so passes run one at a time.

When: answering Certyneo comes first, since a delivery not answered in time is retried and adds load, while
an asset event a second or two later changes little. So a pass starts once this worker has recorded nothing
for :data:`QUIET_SECONDS`, or once its oldest undrained delivery has waited :data:`DEADLINE_SECONDS`,
whichever comes first (:func:`seconds_to_hold`); and every :data:`POLL_SECONDS` anyway, which drains what
a worker that stopped left behind. A pass takes the oldest rows, :data:`BATCH` per transaction, until none
are left. A batch that fails is drained again one row at a time; a row that fails alone is logged and left
in the inbox for :data:`RETRY_FAILED_SECONDS` while the others go on; a pass that fails as a whole (the
database is away) is retried after a growing pause.

The thread is started as an API-server worker starts (:func:`start`, from the plugin's root middleware, and
again, idempotently, when the plugin's app is built on a first request); a process that only records (a
test, a tool) drains with :func:`drain_pass`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from airflow_provider_certyneo.plugins.asset_events import register_event
from airflow_provider_certyneo.plugins.claims import INBOX, tables_exist

if TYPE_CHECKING:
    from sqlalchemy.engine import Row
    from sqlalchemy.orm import Session
    from sqlalchemy.sql.elements import ColumnElement

log = logging.getLogger(__name__)
QUIET_SECONDS = 0.05
DEADLINE_SECONDS = 2.0
POLL_SECONDS = 5.0
BATCH = 200
RETRY_FAILED_SECONDS = 60.0
MAX_PAUSE_SECONDS = 60.0
Key = tuple[str, str]  # (asset URI, event id)


def seconds_to_hold(now: float, last_recorded: float, pending_since: float | None) -> float:
    """How long a pass should still wait (0: start now): until nothing was recorded for QUIET_SECONDS, or
    the oldest delivery not yet drained has waited DEADLINE_SECONDS."""
    if pending_since is None:
        return 0.0
    return max(0.0, min(QUIET_SECONDS - (now - last_recorded), DEADLINE_SECONDS - (now - pending_since)))


def keys_in(keys: Iterable[Key]) -> ColumnElement[bool]:
    """``(asset_uri, event_id) IN keys``, as one ``IN`` per asset (every database takes it)."""
    from sqlalchemy import and_, false, or_

    by_uri: dict[str, list[str]] = {}
    for uri, event_id in keys:
        by_uri.setdefault(uri, []).append(event_id)
    if not by_uri:
        return false()
    return or_(*(and_(INBOX.c.asset_uri == uri, INBOX.c.event_id.in_(ids)) for uri, ids in by_uri.items()))


def take(
    session: Session, limit: int, skip: Collection[Key] = (), only: Collection[Key] | None = None
) -> list[Row]:
    """Deletes and returns (asset_uri, event_id, payload, received_at) of up to ``limit`` of the oldest inbox
    rows no other transaction holds, ``skip`` left out (or of ``only`` those); the deletion commits with the
    caller's registrations, or is rolled back with them."""
    from airflow.utils.sqlalchemy import with_row_locks
    from sqlalchemy import delete, select, tuple_

    columns = (INBOX.c.asset_uri, INBOX.c.event_id, INBOX.c.payload, INBOX.c.received_at)
    dialect = session.get_bind().dialect.name
    chosen = select(INBOX.c.asset_uri, INBOX.c.event_id)
    if only is not None:
        chosen = chosen.where(keys_in(only))
    if skip:
        chosen = chosen.where(~keys_in(skip))
    chosen = with_row_locks(
        chosen.order_by(INBOX.c.received_at).limit(limit), session=session, skip_locked=True
    )
    if dialect in ("postgresql", "sqlite"):  # one statement, a write first: SQLite's lock before any read
        statement = delete(INBOX).where(tuple_(INBOX.c.asset_uri, INBOX.c.event_id).in_(chosen))
        rows = list(session.execute(statement.returning(*columns)))
    else:  # MySQL refuses LIMIT in an IN subquery and has no DELETE … RETURNING: lock, then delete
        locked = chosen.with_only_columns(*columns)
        rows = list(session.execute(locked))
        session.execute(delete(INBOX).where(keys_in((row[0], row[1]) for row in rows)))
    return sorted(rows, key=lambda row: (row.received_at, row.event_id))


def drain_batch(
    limit: int = BATCH, skip: Collection[Key] = (), only: Collection[Key] | None = None
) -> list[Key]:
    """Registers up to ``limit`` of the oldest inbox rows (see :func:`take`) as asset events, in one
    transaction; returns their keys. Raises what the transaction raised (nothing is then drained)."""
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = take(session, limit, skip, only)
        for row in rows:
            payload = json.loads(row.payload)
            event_id = register_event(session, row.asset_uri, payload)
            waited = time.time() - row.received_at.timestamp()
            if event_id is None:
                log.warning(
                    "Certyneo event %s (envelope %s) not registered: no DAG is scheduled on %s any more",
                    row.event_id,
                    payload.get("envelope_id"),
                    row.asset_uri,
                )
            else:
                log.info(
                    "Certyneo event %s (envelope %s) is asset event %s on %s, %.0f ms after its delivery",
                    row.event_id,
                    payload.get("envelope_id"),
                    event_id,
                    row.asset_uri,
                    waited * 1000,
                )
    return [(row.asset_uri, row.event_id) for row in rows]


def drain_pass(failed: dict[Key, float] | None = None) -> int:
    """Drains the inbox, :data:`BATCH` rows per transaction, until it is empty (or holds only rows that
    failed alone less than RETRY_FAILED_SECONDS ago, kept in ``failed``: key -> when to try it again);
    returns how many rows it registered or found gone. Raises when a batch of one fails."""
    from airflow import settings

    failed = {} if failed is None else failed
    if settings.engine is None or not tables_exist(settings.engine):
        return 0  # no delivery was ever recorded here: nothing to drain, and no table to create
    drained = 0
    while True:
        now = time.monotonic()
        for key in [key for key, retry_at in failed.items() if retry_at <= now]:
            del failed[key]
        try:
            keys = drain_batch(BATCH, skip=failed.keys())
        except Exception:
            keys = drain_one_at_a_time(failed)
            if not keys:
                raise
        drained += len(keys)
        if len(keys) < BATCH:
            return drained


def drain_one_at_a_time(failed: dict[Key, float]) -> list[Key]:
    """The oldest batch's rows drained one per transaction; a row that fails goes into ``failed``."""
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(INBOX.c.asset_uri, INBOX.c.event_id).order_by(INBOX.c.received_at).limit(BATCH)
        if failed:
            query = query.where(~keys_in(failed.keys()))
        batch: list[Key] = [(uri, event_id) for uri, event_id in session.execute(query)]
    drained: list[Key] = []
    for key in batch:
        try:
            drained += drain_batch(1, only=[key])
        except Exception:
            log.exception(
                "Certyneo event %s could not be registered on %s; tried again later", key[1], key[0]
            )
            failed[key] = time.monotonic() + RETRY_FAILED_SECONDS
    return drained


class Drainer:
    """The thread: woken by :meth:`recorded`, holds off while deliveries keep coming, then drains."""

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_recorded = 0.0
        self._pending_since: float | None = None
        self._failed: dict[Key, float] = {}
        self.passing = threading.Lock()  # held during each pass

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="certyneo-webhook-drainer", daemon=True
                )
                self._thread.start()

    def recorded(self) -> None:
        now = time.monotonic()
        with self._lock:
            self._last_recorded = now
            if self._pending_since is None:
                self._pending_since = now
        self._wake.set()

    def _hold(self) -> float:
        with self._lock:
            return seconds_to_hold(time.monotonic(), self._last_recorded, self._pending_since)

    def _run(self) -> None:
        pause = 0.0
        while True:
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
            while (hold := self._hold()) > 0:
                time.sleep(hold)
            with self._lock:
                self._pending_since = None
            try:
                with self.passing:
                    drain_pass(self._failed)
            except Exception:
                pause = min(MAX_PAUSE_SECONDS, max(1.0, 2 * pause))
                log.exception("Certyneo webhook inbox not drained; trying again in %.0f s", pause)
                time.sleep(pause)
                self._wake.set()
            else:
                pause = 0.0


_drainer = Drainer()


def start() -> None:
    """Starts this process's drainer thread, if it is not running (it drains what is already waiting)."""
    _drainer.start()
    _drainer.recorded()


@contextmanager
def held() -> Iterator[None]:
    """No pass of this process's drainer runs inside the block (for a caller draining by itself)."""
    with _drainer.passing:
        yield


def recorded() -> None:
    """Tells this process's drainer that deliveries were just recorded (nothing, if it is not started)."""
    _drainer.recorded()
