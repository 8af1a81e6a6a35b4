"""The data of the Signatures view: which envelopes a DAG run's Certyneo tasks made (from its XComs; the API
server has the metadata database), and what Certyneo says about them now.

Certyneo is read through the key's governor at a small share of its rate (``VIEW_SHARE``) on top of the
hook's own pacing, at most once per ``[certyneo] view_cache_seconds`` (default 30 s) per run or waiting list:
an open page, or many, never competes with sending. A look costs a bounded number of requests: the first
lists the envelopes changed since the run started (100 a request: 20 for a run of 2,000), later ones only
what changed since the previous look (one request for a quiet run, whatever its size). Only what anyone who
may read the DAG may see leaves this module: names, e-mails, statuses, times, decline reasons — never the
key, never a sign URL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
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
PAGE = 100  # envelopes per list request (the API's maximum)
LIST_SLACK_PAGES = 5  # a run's look may list this many pages beyond its own envelopes (other runs' changes)
MAX_LIST_PAGES = 60  # and never more than this (6,000 envelopes): one look's cost is bounded
MAX_WAITING_PAGES = 50  # the waiting page lists at most 5,000 waiting envelopes per look
SINGLE_READS = 10  # envelopes a look reads one by one when a listing did not name them
MAX_LOOKS = 64  # runs (and connections' waiting lists) whose last look is kept
WAITING_LOOKBACK = timedelta(days=90)
WAITING_FULL = timedelta(minutes=15)  # the waiting list is listed whole again this often
# a run's envelopes changed after it started; Certyneo's clock may differ from this machine's by this much
CLOCK_MARGIN = timedelta(minutes=10)
WATERMARK_MARGIN = timedelta(seconds=5)  # a later look lists again what changed this long before the last


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


@dataclass
class Look:
    """What the view knows of some envelopes of one connection, and when it last asked.

    The first look lists the envelopes changed since ``since`` (100 a request, newest first); later looks
    list only those changed since the ``watermark``: the latest ``updatedAt`` the previous look saw, on
    Certyneo's own clock (so this machine's clock does not matter), less that look's duration and
    :data:`WATERMARK_MARGIN` (a change made while it listed is listed again). For a run whose signers are
    quiet that is one request, whatever the run's size."""

    since: datetime | None
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    watermark: datetime | None = None  # on Certyneo's clock: what changed after it is not known yet
    fresh_until: float = 0.0
    requests: int = 0  # what the last look cost
    note: str | None = None  # why some states may be older than the look
    full_at: datetime | None = None  # the waiting page's last full listing
    lock: threading.Lock = field(default_factory=threading.Lock)


class Looks:
    """The last :data:`MAX_LOOKS` looks by key (a run, or a connection's waiting envelopes), least recently
    used dropped first: memory bounded by the number of pages people keep open, not by history."""

    def __init__(self) -> None:
        self._looks: OrderedDict[Any, Look] = OrderedDict()
        self._guard = threading.Lock()

    def get(self, key: Any, since: datetime | None) -> Look:
        with self._guard:
            look = self._looks.get(key)
            if look is None or look.since != since:
                look = self._looks[key] = Look(since)
            self._looks.move_to_end(key)
            while len(self._looks) > MAX_LOOKS:
                self._looks.popitem(last=False)
            return look

    def clear(self) -> None:
        with self._guard:
            self._looks.clear()

    def expire(self) -> None:
        """The next view of each looks at Certyneo again (what it knows is kept)."""
        with self._guard:
            for look in self._looks.values():
                look.fresh_until = 0.0

    def note(self, which: Any) -> str | None:
        with self._guard:
            return next((look.note for key, look in self._looks.items() if which(key) and look.note), None)

    def requests(self, which: Any) -> int:
        """What the last looks of these keys cost (for the benchmark and the tests)."""
        with self._guard:
            return sum(look.requests for key, look in self._looks.items() if which(key))


LOOKS = Looks()


def run_note(scope: Any) -> str | None:
    """Why some states of the run ``scope`` may be older than its page (a look that could not read all)."""
    return LOOKS.note(lambda key: key[0] == "run" and key[2] == scope)


class OverBudget(Exception):
    """A look has made the list requests it may make."""


class Listing:
    """One paced pass over ``list_envelopes(**filters)``, of at most ``budget`` requests; ``truncated``
    says whether it stopped there before the list's end."""

    def __init__(self, hook: Any, pacer: Any, budget: int, **filters: Any) -> None:
        self.hook, self.pacer, self.budget, self.filters = hook, pacer, budget, filters
        self.pages = 0
        self.truncated = False

    def _pace(self) -> None:
        if self.pages >= self.budget:
            raise OverBudget
        self.pages += 1
        self.pacer.pace()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            yield from self.hook.list_envelopes(page_size=PAGE, pace=self._pace, **self.filters)
        except OverBudget:
            self.truncated = True


def listing_latest(envelopes: Any) -> datetime | None:
    """The latest ``updatedAt`` among ``envelopes`` (Certyneo's clock), or None."""
    moments = [m for m in (instant(e.get("updatedAt")) for e in envelopes) if m is not None]
    return max(moments) if moments else None


def watermark(envelopes: Any, started: float, previous: datetime | None) -> datetime | None:
    """Where the next look starts: the latest change seen, less this look's duration (a change made while
    it listed may be older than one listed after it) and :data:`WATERMARK_MARGIN`; never before
    ``previous``."""
    latest = listing_latest(envelopes)
    if latest is None:
        return previous
    mark = latest - timedelta(seconds=time.monotonic() - started) - WATERMARK_MARGIN
    return mark if previous is None else max(previous, mark)


def page_budget(count: int) -> int:
    """The list requests one look may make for ``count`` envelopes: enough for all of them, some to spare
    for other runs' envelopes changed meanwhile, never more than :data:`MAX_LIST_PAGES`."""
    return min(MAX_LIST_PAGES, -(-count // PAGE) + LIST_SLACK_PAGES)


class Counting:
    """A pacer that counts what it lets through (the requests of one look)."""

    def __init__(self, pacer: Any, look: Look) -> None:
        self.pacer, self.look = pacer, look

    def pace(self) -> None:
        self.look.requests += 1
        self.pacer.pace()


def read_envelopes(
    conn_id: str, ids: frozenset[str], since: datetime | None, scope: Any = None
) -> dict[str, Any]:
    """Certyneo's state of ``ids``: ``{id: envelope}``, or ``{id: "why unknown"}``. Read at most once per
    ``cache_seconds()`` per ``scope`` (a run: its envelopes), paced at :data:`VIEW_SHARE` of the key's rate;
    a look costs at most :func:`page_budget` list requests and :data:`SINGLE_READS` single reads."""
    from airflow_provider_certyneo.exceptions import CertyneoError, CertyneoNotFoundError

    look = LOOKS.get(("run", conn_id, scope if scope is not None else ids), since)
    with look.lock:
        known = look.states
        if look.fresh_until > time.monotonic():  # new envelopes wait for the next look: a bounded cost
            return {i: known.get(i, "not read yet: the view reads Certyneo again shortly") for i in ids}
        look.requests, look.note = 0, None
        unknown: dict[str, str] = {}
        started = time.monotonic()
        try:
            with _hook(conn_id) as hook:
                hook.settings  # noqa: B018 - reads the connection, which the governor needs
                pacer = Counting(hook.governor("signatures-view", VIEW_SHARE), look)
                complete = True
                listed = since is not None and len(ids) > 3  # else every envelope is read alone, each look
                if since is not None and listed:
                    first = look.watermark is None
                    changed_since = since if look.watermark is None else max(since, look.watermark)
                    listing = Listing(hook, pacer, page_budget(len(ids)), updated_since=changed_since)
                    for envelope in listing:
                        if envelope.get("id") in ids:
                            known[envelope["id"]] = dict(envelope)
                            if first and ids <= known.keys():
                                break  # the first look stops once it has them all
                    complete = not listing.truncated
                to_read = sorted(ids - known.keys()) if listed else sorted(ids)
                for envelope_id in to_read[:SINGLE_READS]:
                    pacer.pace()
                    try:
                        known[envelope_id] = dict(hook.get_envelope(envelope_id))
                    except CertyneoNotFoundError:
                        unknown[envelope_id] = "not found with this connection's key"
                if complete and listing_latest(known.values()) is not None:
                    look.watermark = watermark(known.values(), started, look.watermark)
                elif not complete:
                    look.note = (
                        "More envelopes changed than one look reads: some states may be older than shown."
                    )
        except CertyneoError as exc:
            log.warning("Signatures view: reading connection %r failed: %s", conn_id, exc)
            look.fresh_until = time.monotonic() + cache_seconds()
            return {i: known.get(i, f"Certyneo could not be read: {exc}") for i in ids}
        look.fresh_until = time.monotonic() + cache_seconds()
        return {i: known.get(i) or unknown.get(i, "not read (too many envelopes for one look)") for i in ids}


def waiting_envelopes(conn_id: str) -> dict[str, dict[str, Any]]:
    """Every envelope of the connection still SENT, by id. The first look lists them all (status SENT, at
    most :data:`MAX_WAITING_PAGES` requests); later looks list what changed since the previous one and keep
    only what is still SENT and not past its expiry; every :data:`WAITING_FULL` they list them all again."""
    look = LOOKS.get(("waiting", conn_id), None)
    with look.lock:
        if look.fresh_until > time.monotonic():
            return dict(look.states)
        look.requests, look.note = 0, None
        started, now = time.monotonic(), datetime.now(timezone.utc)
        full = look.watermark is None or look.full_at is None or now - look.full_at > WAITING_FULL
        seen: list[dict[str, Any]] = []
        with _hook(conn_id) as hook:
            hook.settings  # noqa: B018 - reads the connection, which the governor needs
            pacer = Counting(hook.governor("signatures-view", VIEW_SHARE), look)
            if full:
                listing = Listing(hook, pacer, MAX_WAITING_PAGES, status="SENT")
                look.states = {envelope["id"]: dict(envelope) for envelope in listing}
                look.full_at = now
            else:
                assert look.watermark is not None
                listing = Listing(hook, pacer, MAX_WAITING_PAGES, updated_since=look.watermark)
                for envelope in listing:
                    seen.append(envelope)
                    if envelope.get("status") == "SENT":
                        look.states[envelope["id"]] = dict(envelope)
                    else:
                        look.states.pop(envelope["id"], None)
            if listing.truncated:
                look.note = f"More envelopes are waiting than one look reads ({len(look.states)} listed)."
                look.full_at = None  # list them all again next time
        for envelope_id, envelope in list(look.states.items()):
            expires = instant(envelope.get("expiresAt"))
            if expires is not None and expires <= now:
                del look.states[envelope_id]
        look.watermark = watermark([*look.states.values(), *seen], started, look.watermark)
        look.fresh_until = time.monotonic() + cache_seconds()
        return dict(look.states)


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


def rows_for(made: list[Made], since: datetime | None, scope: Any = None) -> list[Row]:
    """Rows for these envelopes with Certyneo's state, read per connection (``scope``: the run they are
    of, whose last look the next one continues)."""
    made = with_links(made)
    states: dict[str, Any] = {}
    for conn_id in sorted({m.conn_id for m in made}):
        ids = frozenset(m.envelope_id for m in made if m.conn_id == conn_id)
        states.update(read_envelopes(conn_id, ids, since, scope))
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
        note = LOOKS.note(lambda key, conn_id=conn_id: key == ("waiting", conn_id))
        if note:
            problems.append(f"connection {conn_id}: {note}")
        for m in made:
            if m.conn_id == conn_id and m.envelope_id in waiting:
                envelope = waiting[m.envelope_id]
                rows.append(Row(m, envelope=envelope, recipients=recipients_of(envelope)))
    unsent = datetime.min.replace(tzinfo=timezone.utc)
    rows.sort(key=lambda r: instant((r.envelope or {}).get("sentAt")) or unsent)
    return rows, problems
