"""One poller per connection and event loop, shared by every trigger waiting on an envelope.

A thousand deferred tasks on one key must not each ask "signed yet?": that alone would spend ten times
the key's limit. Triggers register the envelopes they wait for with the watcher of their connection; the
watcher reads each newly registered envelope once, then asks only "what changed since my last look?" with
the list endpoint (``updatedSince``, following ``nextCursor``) once per poll interval, and hands every
change to the triggers that wait for it. Its requests are also paced by a poll budget per key (a share of
the key's rate limit, half by default), so polling never starves the tasks that send contracts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_certyneo.exceptions import CertyneoError
from airflow_provider_certyneo.governor.governor import Governor
from airflow_provider_certyneo.hooks.certyneo import CertyneoAsyncHook

log = logging.getLogger(__name__)
DEFAULT_POLL_SHARE = 0.5
OVERLAP = timedelta(seconds=10)


@dataclass
class Update:
    """What a waiting trigger receives: the envelope as last seen, or the error that ends its wait."""

    envelope: dict[str, Any] | None = None
    error: CertyneoError | None = None


@dataclass
class _Watch:
    queues: set[asyncio.Queue[Update]] = field(default_factory=set)
    interval: float = 60.0
    seen: dict[str, Any] | None = None


class EnvelopeWatcher:
    """Polls Certyneo for the envelopes its triggers wait on. Get it with :func:`watcher_for`."""

    def __init__(self, conn_id: str, poll_share: float = DEFAULT_POLL_SHARE) -> None:
        self.conn_id = conn_id
        self.poll_share = poll_share
        self._watches: dict[str, _Watch] = {}
        self._new: set[str] = set()
        self._backfill: datetime | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.requests = 0

    @property
    def watching(self) -> int:
        return len(self._watches)

    async def updates(
        self, envelope_id: str, interval: float, changed_since: datetime | None = None
    ) -> AsyncGenerator[Update, None]:
        """Every change of ``envelope_id`` until the caller stops iterating: its current state first, or, when
        the caller already knows it as of ``changed_since``, only the changes after that (no GET needed)."""
        queue: asyncio.Queue[Update] = asyncio.Queue()
        watch = self._watches.setdefault(envelope_id, _Watch(interval=interval))
        watch.interval = min(watch.interval, interval)
        watch.queues.add(queue)
        if watch.seen is not None:
            queue.put_nowait(Update(envelope=watch.seen))
        elif changed_since is not None:
            self._backfill = changed_since if self._backfill is None else min(self._backfill, changed_since)
        else:
            self._new.add(envelope_id)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"certyneo-watcher-{self.conn_id}")
        try:
            while True:
                yield await queue.get()
        finally:
            watch.queues.discard(queue)
            if not watch.queues:
                self._watches.pop(envelope_id, None)
                self._new.discard(envelope_id)

    def _deliver(self, envelope_id: str, update: Update) -> None:
        watch = self._watches.get(envelope_id)
        if watch is None:
            return
        if update.envelope is not None:
            if watch.seen is not None and watch.seen.get("updatedAt") == update.envelope.get("updatedAt"):
                return
            watch.seen = update.envelope
        for queue in watch.queues:
            queue.put_nowait(update)

    async def _paced(self, budget: Governor) -> None:
        await budget.apace()
        self.requests += 1

    async def _run(self) -> None:
        async with CertyneoAsyncHook(self.conn_id) as hook:
            await hook.asettings()
            budget = hook.governor("poll", self.poll_share)
            since: float | None = None  # this machine's time.time(); read in Certyneo's time when used
            next_list = 0.0
            while self._watches:
                first_look = time.time()
                all_read = await self._read_new(hook, budget)
                if since is None and self._backfill is None:
                    since, next_list = first_look, time.monotonic() + self._interval()
                elif time.monotonic() >= next_list and self._watches:
                    round_started = time.monotonic()
                    clock_known = hook.server_clock.observed
                    list_started = time.time()
                    backfill, self._backfill = self._backfill, None
                    start = min(
                        filter(None, (None if since is None else hook.server_clock.at(since), backfill))
                    )
                    if await self._read_changes(hook, budget, start) and clock_known:
                        since = list_started
                    elif backfill is not None:
                        self._backfill = backfill
                    next_list = round_started + self._interval()
                self._wake.clear()
                if self._new and all_read:
                    continue
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, next_list - time.monotonic()))

    def _interval(self) -> float:
        return min((w.interval for w in self._watches.values()), default=0.0)

    async def _read_new(self, hook: CertyneoAsyncHook, budget: Governor) -> bool:
        """One GET for each newly watched envelope: its state now."""
        for envelope_id in sorted(self._new):
            self._new.discard(envelope_id)
            if envelope_id not in self._watches:
                continue
            await self._paced(budget)
            try:
                self._deliver(envelope_id, Update(envelope=dict(await hook.get_envelope(envelope_id))))
            except CertyneoError as exc:
                if not exc.retryable:
                    self._deliver(envelope_id, Update(error=exc))
                    continue
                log.warning("Certyneo unavailable reading %s, will try again: %s", envelope_id, exc)
                self._new.add(envelope_id)
                return False
        return True

    async def _read_changes(self, hook: CertyneoAsyncHook, budget: Governor, since: datetime) -> bool:
        """Deliver every envelope updated since ``since`` (less an overlap: changes committed while the last
        list was in flight, and the clock estimate's error).
        False when the round failed and must be done again from the same ``since``."""
        try:
            await self._paced(budget)
            async for envelope in hook.list_envelopes(updated_since=since - OVERLAP):
                if envelope["id"] in self._watches:
                    self._deliver(envelope["id"], Update(envelope=dict(envelope)))
        except CertyneoError as exc:
            if exc.retryable:
                log.warning("Certyneo unavailable listing changes, will try again: %s", exc)
                return False
            for envelope_id in list(self._watches):
                self._deliver(envelope_id, Update(error=exc))
        return True


_watchers: dict[tuple[int, str, float], EnvelopeWatcher] = {}


def watcher_for(conn_id: str, poll_share: float = DEFAULT_POLL_SHARE) -> EnvelopeWatcher:
    """The watcher of ``conn_id`` on the running event loop (one per loop: a triggerer has one)."""
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k, w in _watchers.items() if k[0] != loop_id and (w._task is None or w._task.done())]:
        del _watchers[key]
    key = (loop_id, conn_id, poll_share)
    watcher = _watchers.get(key)
    if watcher is None:
        watcher = _watchers[key] = EnvelopeWatcher(conn_id, poll_share)
    return watcher
