"""One poller per connection and event loop, shared by every trigger waiting on an envelope.

A thousand deferred tasks on one key must not each ask "signed yet?": that alone would spend ten times
the key's limit. Triggers register the envelopes they wait for with the watcher of their connection; the
watcher reads each newly registered envelope once, then asks only "what changed since my last look?" with
the list endpoint (``updatedSince``, following ``nextCursor``) once per poll interval, and hands every
change to the triggers that wait for it. Its requests are also paced by a poll budget per key (a share of
the key's rate limit, half by default), so polling never starves the tasks that send contracts.

It never fails silently: a failure that polling again can get past (Certyneo unavailable, the network)
restarts the poller; any other (a connection the triggerer cannot read, a revoked key, a bug) ends every
waiting trigger with an ``error`` event that says what to fix. Its background task lives only while some
trigger waits: the last one to leave cancels it and closes its HTTP client, so a triggerer shutting down
is not held by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from airflow_provider_certyneo.client import defaults
from airflow_provider_certyneo.exceptions import CertyneoError
from airflow_provider_certyneo.governor.governor import Governor
from airflow_provider_certyneo.hooks.certyneo_async import CertyneoAsyncHook
from airflow_provider_certyneo.triggers.failures import explain, is_transient
from airflow_provider_certyneo.triggers.feed import ChangeFeed

log = logging.getLogger(__name__)
__all__ = ["EnvelopeWatcher", "Update", "watcher_for"]


@dataclass
class Update:
    """What a waiting trigger receives: the envelope as last seen, or why its wait cannot go on (a message
    that says what to fix)."""

    envelope: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class _Watch:
    queues: set[asyncio.Queue[Update]] = field(default_factory=set)
    interval: float = 60.0
    seen: dict[str, Any] | None = None


class EnvelopeWatcher:
    """Polls Certyneo for the envelopes its triggers wait on. Get it with :func:`watcher_for`."""

    def __init__(self, conn_id: str, poll_share: float = defaults.POLL_SHARE) -> None:
        self.conn_id = conn_id
        self.poll_share = poll_share
        self._watches: dict[str, _Watch] = {}
        self._new: set[str] = set()
        self._backfill: datetime | None = None
        self._feed = ChangeFeed()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.requests = 0
        self.restarts = 0

    @property
    def watching(self) -> int:
        """How many envelopes are being watched."""
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
        _register(self)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._supervise(), name=f"certyneo-watcher-{self.conn_id}")
        try:
            while True:
                yield await queue.get()
        finally:
            watch.queues.discard(queue)
            if not watch.queues:
                self._watches.pop(envelope_id, None)
                self._new.discard(envelope_id)
            if not self._watches:
                self._stop()

    def _stop(self) -> None:
        """Nobody waits any more: cancel the poller now (its HTTP client closes as it unwinds) rather than
        let it sleep out its interval, and leave the registry."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        self._feed = ChangeFeed()
        _forget(self)

    async def _supervise(self) -> None:
        """Run the poller; restart it after a passing failure, end every wait with the reason otherwise."""
        failures = 0
        while self._watches:
            try:
                await self._run()
                return
            except Exception as exc:
                if is_transient(exc):
                    failures += 1
                    self.restarts += 1
                    delay = min(max(self._interval(), 0.1), 2.0 ** min(failures, 10))
                    log.warning(
                        "Certyneo poller of %r stopped (%s); restarting in %.1f s", self.conn_id, exc, delay
                    )
                    await asyncio.sleep(delay)
                    continue
                message = explain(exc, self.conn_id)
                log.exception(
                    "Certyneo poller of %r failed, ending %d wait(s): %s",
                    self.conn_id,
                    len(self._watches),
                    message,
                )
                self._fail_all(message)
                return

    def _fail_all(self, message: str) -> None:
        self._new.clear()
        for envelope_id in list(self._watches):
            self._deliver(envelope_id, Update(error=message))

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
            pace, feed = partial(self._paced, budget), self._feed
            next_list = 0.0
            while self._watches:
                first_look = time.time()
                all_read = await self._read_new(hook, budget)
                if feed.cursor is None and self._backfill is None:
                    feed.cursor, next_list = (
                        hook.server_clock.at(first_look),
                        time.monotonic() + self._interval(),
                    )
                elif time.monotonic() >= next_list and self._watches:
                    round_started = time.monotonic()
                    if self._backfill is not None:
                        feed.rewind(self._backfill)
                        self._backfill = None
                    await feed.poll(hook, pace, self._deliver_change)
                    next_list = round_started + self._interval()
                self._wake.clear()
                if self._new and all_read:
                    continue
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, next_list - time.monotonic()))

    def _deliver_change(self, envelope: Any) -> None:
        if envelope["id"] in self._watches:
            self._deliver(envelope["id"], Update(envelope=dict(envelope)))

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
                    self._deliver(envelope_id, Update(error=explain(exc, self.conn_id)))
                    continue
                log.warning("Certyneo unavailable reading %s, will try again: %s", envelope_id, exc)
                self._new.add(envelope_id)
                return False
        return True


_Key = tuple[str, float]
_registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, EnvelopeWatcher]] = (
    weakref.WeakKeyDictionary()
)


def watcher_for(conn_id: str, poll_share: float = defaults.POLL_SHARE) -> EnvelopeWatcher:
    """The watcher of ``conn_id`` on the running event loop (one per loop: a triggerer has one).

    Keyed on the loop object itself (weakly): an ``id()`` can be reused by a later loop once the first is
    gone, which would hand that loop a watcher whose task and events belong to a dead one."""
    watchers = _registry.setdefault(asyncio.get_running_loop(), {})
    watcher = watchers.get((conn_id, poll_share))
    if watcher is None:
        watcher = watchers[(conn_id, poll_share)] = EnvelopeWatcher(conn_id, poll_share)
    return watcher


def _register(watcher: EnvelopeWatcher) -> None:
    """Make ``watcher`` the one of its connection again when a trigger starts waiting on it (it left the
    registry when its last wait ended; a trigger may still hold it)."""
    _registry.setdefault(asyncio.get_running_loop(), {}).setdefault(
        (watcher.conn_id, watcher.poll_share), watcher
    )


def _forget(watcher: EnvelopeWatcher) -> None:
    with contextlib.suppress(RuntimeError):
        watchers = _registry.get(asyncio.get_running_loop(), {})
        if watchers.get((watcher.conn_id, watcher.poll_share)) is watcher:
            del watchers[(watcher.conn_id, watcher.poll_share)]
