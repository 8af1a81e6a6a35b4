"""The data of the Signatures view: which envelopes a DAG run's Certyneo tasks made (from its XComs; the API
server has the metadata database), and what Certyneo says about them now.

Certyneo is read through the key's governor at a small share of its rate (``VIEW_SHARE``) on top of the
hook's own pacing, and answers are cached for ``[certyneo] view_cache_seconds`` (default 30 s): an open page,
or many, never competes with sending. Only what anyone who may read the DAG may see leaves this module:
names, e-mails, statuses, times, decline reasons — never the key, never a sign URL.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

from airflow_provider_certyneo import xcom
from airflow_provider_certyneo.client import defaults
from airflow_provider_certyneo.client.outcomes import recipients_of
from airflow_provider_certyneo.client.timestamps import instant

log = logging.getLogger(__name__)

VIEW_SHARE = 0.1
CACHE_SECONDS = 30.0
LIST_PAGES = 20  # at most 2,000 envelopes listed per look; the rest are read one by one
SINGLE_READS = 50
WAITING_LOOKBACK = timedelta(days=90)
CLOCK_MARGIN = timedelta(
    minutes=10
)  # a run's envelopes changed after it started; Certyneo's clock may differ


@dataclass
class Made:
    """An envelope a task instance made (or sent), with where it came from."""

    envelope_id: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    conn_id: str = defaults.CONN_ID
    url: str | None = None


@dataclass
class Row:
    """An envelope as the view shows it: where it came from, and Certyneo's state (or why it is unknown)."""

    made: Made
    envelope: dict[str, Any] | None = None
    problem: str | None = None
    recipients: list[dict[str, Any]] = field(default_factory=list)


def cache_seconds() -> float:
    from airflow.providers.common.compat.sdk import conf

    return max(0.0, conf.getfloat("certyneo", "view_cache_seconds", fallback=CACHE_SECONDS))


class Cache:
    """Answers by key for ``cache_seconds()``; one reader per key at a time (a second page waits for the
    first one's answer instead of asking Certyneo again)."""

    def __init__(self) -> None:
        self._values: dict[Any, tuple[float, Any]] = {}
        self._locks: dict[Any, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Any, read: Any) -> Any:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            hit = self._values.get(key)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
            value = read()
            self._values[key] = (time.monotonic() + cache_seconds(), value)
            return value

    def clear(self) -> None:
        self._values.clear()


CACHE = Cache()


def _xcom_rows(session: Any, *conditions: Any) -> list[tuple[str, str, str, int, str, Any]]:
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    query = (
        select(
            XComModel.dag_id,
            XComModel.run_id,
            XComModel.task_id,
            XComModel.map_index,
            XComModel.key,
            XComModel.value,
        )
        .where(XComModel.key.in_(xcom.ENVELOPE_KEYS), *conditions)
        .order_by(XComModel.timestamp)
    )
    rows = []
    for dag_id, run_id, task_id, map_index, key, value in session.execute(query):
        try:
            value = XComModel.deserialize_value(SimpleNamespace(value=value))
        except Exception:  # noqa: BLE001 - a value this view cannot read is skipped, never a 500
            continue
        rows.append((dag_id, run_id, task_id, map_index, key, value))
    return rows


def made_from_xcoms(rows: list[tuple[str, str, str, int, str, Any]]) -> list[Made]:
    """The envelopes of these XCom rows (oldest first): the ``envelope_id`` the operators and sensor push
    before any wait (with ``certyneo_conn_id`` and the link), and the bulk operator's ``results``."""
    by_ti: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    for dag_id, run_id, task_id, map_index, key, value in rows:
        by_ti.setdefault((dag_id, run_id, task_id, map_index), {})[key] = value
    made: dict[str, Made] = {}
    for (dag_id, run_id, task_id, map_index), values in by_ti.items():
        conn_id = values.get(xcom.CONN_ID)
        conn_id = conn_id if isinstance(conn_id, str) and conn_id else defaults.CONN_ID
        ids: list[str] = []
        if isinstance(values.get(xcom.ENVELOPE_ID), str):
            ids.append(values[xcom.ENVELOPE_ID])
        results = values.get(xcom.RESULTS)
        if isinstance(results, list):
            ids += [r["envelope_id"] for r in results if isinstance(r, dict) and r.get("envelope_id")]
        url = values.get(xcom.ENVELOPE_URL) if len(ids) == 1 else None
        for envelope_id in ids:
            # the last task that named it (the send or the wait, rather than the create)
            earlier = made.get(envelope_id)
            url = url or (earlier.url if earlier else None)
            made[envelope_id] = Made(envelope_id, dag_id, run_id, task_id, map_index, conn_id, url)
    return list(made.values())


def run_envelopes(session: Any, dag_id: str, run_id: str) -> list[Made]:
    from airflow.models.xcom import XComModel

    rows = _xcom_rows(session, XComModel.dag_id == dag_id, XComModel.run_id == run_id)
    return sorted(made_from_xcoms(rows), key=lambda m: (m.task_id, m.map_index, m.envelope_id))


def recent_envelopes(session: Any, dag_ids: set[str]) -> list[Made]:
    """Envelopes made by runs of these DAGs that started within :data:`WAITING_LOOKBACK`."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    if not dag_ids:
        return []
    since = datetime.now().astimezone() - WAITING_LOOKBACK
    recent_runs = select(DagRun.id).where(DagRun.dag_id.in_(dag_ids), DagRun.run_after >= since)
    rows = _xcom_rows(session, XComModel.dag_id.in_(dag_ids), XComModel.dag_run_id.in_(recent_runs))
    return made_from_xcoms(rows)


def _hook(conn_id: str) -> Any:
    from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

    return CertyneoHook(conn_id)


def read_envelopes(conn_id: str, ids: frozenset[str], since: datetime | None) -> dict[str, Any]:
    """Certyneo's state of ``ids`` (cached): ``{id: envelope}``, or ``{id: "why unknown"}``. Lists the
    envelopes changed since ``since`` (cheap: 100 a request) and reads the rest one by one, all paced at
    :data:`VIEW_SHARE` of the key's rate."""

    def read() -> dict[str, Any]:
        from airflow_provider_certyneo.exceptions import CertyneoError, CertyneoNotFoundError

        found: dict[str, Any] = {}
        try:
            with _hook(conn_id) as hook:
                hook.settings  # noqa: B018 - reads the connection, which the governor needs
                pacer = hook.governor("signatures-view", VIEW_SHARE)
                if since is not None and len(ids) > 3:
                    pacer.pace()
                    for seen, envelope in enumerate(hook.list_envelopes(updated_since=since)):
                        if envelope.get("id") in ids:
                            found[envelope["id"]] = dict(envelope)
                        if len(found) == len(ids) or seen >= LIST_PAGES * 100:
                            break
                        if seen % 100 == 99:
                            pacer.pace()
                for envelope_id in sorted(ids - set(found))[:SINGLE_READS]:
                    pacer.pace()
                    try:
                        found[envelope_id] = dict(hook.get_envelope(envelope_id))
                    except CertyneoNotFoundError:
                        found[envelope_id] = "not found with this connection's key"
        except CertyneoError as exc:
            log.warning("Signatures view: reading connection %r failed: %s", conn_id, exc)
            return {i: found.get(i, f"Certyneo could not be read: {exc}") for i in ids}
        return {i: found.get(i, "not read (too many envelopes for one look)") for i in ids}

    result: dict[str, Any] = CACHE.get(("ids", conn_id, ids, since), read)
    return result


def waiting_envelopes(conn_id: str) -> dict[str, dict[str, Any]]:
    """Every envelope of the connection still SENT (cached), by id."""

    def read() -> dict[str, dict[str, Any]]:
        with _hook(conn_id) as hook:
            hook.settings  # noqa: B018 - reads the connection, which the governor needs
            pacer = hook.governor("signatures-view", VIEW_SHARE)
            pacer.pace()
            waiting: dict[str, dict[str, Any]] = {}
            for seen, envelope in enumerate(hook.list_envelopes(status="SENT")):
                waiting[envelope["id"]] = dict(envelope)
                if seen >= LIST_PAGES * 100:
                    break
                if seen % 100 == 99:
                    pacer.pace()
            return waiting

    result: dict[str, dict[str, Any]] = CACHE.get(("waiting", conn_id), read)
    return result


def with_links(made: list[Made]) -> list[Made]:
    """Fill in the envelope links tasks did not push (the bulk operator's rows) from the connection's
    ``dashboard_url_template``."""
    from airflow_provider_certyneo.exceptions import CertyneoError

    templates: dict[str, Any] = {}
    for m in made:
        if m.url:
            continue
        if m.conn_id not in templates:
            try:
                templates[m.conn_id] = _hook(m.conn_id).settings
            except (CertyneoError, Exception):  # noqa: BLE001 - no link, rather than no page
                templates[m.conn_id] = None
        settings = templates[m.conn_id]
        if settings is not None:
            m.url = settings.envelope_url(m.envelope_id)
    return made


def rows_for(made: list[Made], since: datetime | None) -> list[Row]:
    """Rows for these envelopes with Certyneo's state, read per connection."""
    made = with_links(made)
    states: dict[str, Any] = {}
    for conn_id in sorted({m.conn_id for m in made}):
        ids = frozenset(m.envelope_id for m in made if m.conn_id == conn_id)
        states.update(read_envelopes(conn_id, ids, since))
    rows = []
    for m in made:
        state = states.get(m.envelope_id)
        if isinstance(state, dict):
            rows.append(Row(m, envelope=state, recipients=recipients_of(state)))
        else:
            rows.append(Row(m, problem=str(state)))
    return rows


def waiting_rows(made: list[Made]) -> tuple[list[Row], list[str]]:
    """The envelopes among ``made`` that are still waiting, oldest sent first, and per-connection problems."""
    from airflow_provider_certyneo.exceptions import CertyneoError

    rows: list[Row] = []
    problems: list[str] = []
    made = with_links(made)
    for conn_id in sorted({m.conn_id for m in made}):
        try:
            waiting = waiting_envelopes(conn_id)
        except CertyneoError as exc:
            problems.append(f"connection {conn_id}: Certyneo could not be read: {exc}")
            continue
        for m in made:
            if m.conn_id == conn_id and m.envelope_id in waiting:
                envelope = waiting[m.envelope_id]
                rows.append(Row(m, envelope=envelope, recipients=recipients_of(envelope)))
    unsent = datetime.min.replace(tzinfo=timezone.utc)
    rows.sort(key=lambda r: instant((r.envelope or {}).get("sentAt")) or unsent)
    return rows, problems
