"""The rate governor of a key: which store paces it, and what happens when that store is unreachable.

A key's requests are paced by one bucket shared as widely as the deployment needs: this machine's
processes by default (:class:`.stores.HostStore`), every host with Redis (:class:`.redis_store.RedisStore`),
or this process alone. When the shared store fails, the governor warns once, falls back to the next
narrower store (Redis, then this host, then this process) and tries the shared one again every few
seconds: a task never fails because the governor is unreachable.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from typing import Protocol

from airflow_provider_certyneo.governor.rule import Drain, Op, Rule, Take
from airflow_provider_certyneo.governor.stores import HostStore, ProcessStore

log = logging.getLogger(__name__)
RETRY_SHARED_AFTER = 5.0
LOCK_RETRY_SECONDS = 0.0005
STORES = ("host", "redis", "process")


class Store(Protocol):
    name: str
    blocking_io: bool

    def apply(self, op: Op, blocking: bool = True) -> float | None: ...


def key_fingerprint(api_key: str) -> str:
    """A stable, non-reversible name for a key, safe to log and to name files and Redis keys with."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


class Governor:
    """Paces the requests of one key (and purpose) through ``stores``, widest first."""

    def __init__(self, stores: list[Store]) -> None:
        self.stores = stores
        self._active = 0
        self._retry_at = 0.0
        self._warned = False
        self._lock = threading.Lock()

    @property
    def store(self) -> Store:
        """The store pacing requests now."""
        return self.stores[self._active]

    def _candidate(self) -> int:
        with self._lock:
            if self._active and time.monotonic() >= self._retry_at:
                self._retry_at = time.monotonic() + RETRY_SHARED_AFTER
                return 0
            return self._active

    def _succeeded(self, index: int) -> None:
        if index < self._active:
            with self._lock:
                log.warning(
                    "Certyneo rate governor: the %s store is back; pacing through it again",
                    self.stores[index].name,
                )
                self._active = index

    def _failed(self, index: int, exc: Exception) -> int:
        with self._lock:
            fallback = min(index + 1, len(self.stores) - 1)
            if fallback > self._active:
                self._active = fallback
                self._retry_at = time.monotonic() + RETRY_SHARED_AFTER
            if not self._warned:
                self._warned = True
                log.warning(
                    "Certyneo rate governor: the %s store is unreachable (%s: %s); pacing with the %s "
                    "store until it is back (tried again every %.0f s)",
                    self.stores[index].name,
                    type(exc).__name__,
                    exc,
                    self.stores[fallback].name,
                    RETRY_SHARED_AFTER,
                )
            return fallback

    def _apply(self, op: Op) -> float:
        index = self._candidate()
        while True:
            try:
                wait = self.stores[index].apply(op, True)
            except Exception as exc:  # an unreachable store must never fail a task
                if index == len(self.stores) - 1:
                    raise
                index = self._failed(index, exc)
                continue
            self._succeeded(index)
            return wait or 0.0

    async def _aapply(self, op: Op) -> float:
        index = self._candidate()
        while True:
            store = self.stores[index]
            try:
                if store.blocking_io:
                    wait = await asyncio.to_thread(store.apply, op, True)
                else:
                    wait = store.apply(op, False)
            except Exception as exc:  # an unreachable store must never fail a task
                if index == len(self.stores) - 1:
                    raise
                index = self._failed(index, exc)
                continue
            if wait is None:
                await asyncio.sleep(LOCK_RETRY_SECONDS)
                continue
            self._succeeded(index)
            return wait

    def reserve(self) -> float:
        """Take one token; how long to wait before sending (0 when free). Callers wait in arrival order."""
        return self._apply(Take())

    async def areserve(self) -> float:
        return await self._aapply(Take())

    def drain(self, seconds: float) -> None:
        """Certyneo answered 429 with ``Retry-After: seconds``: every process sharing the store waits."""
        self._apply(Drain(seconds))

    async def adrain(self, seconds: float) -> None:
        await self._aapply(Drain(seconds))

    def pace(self) -> None:
        """Take a token and wait for it."""
        wait = self.reserve()
        if wait > 0:
            time.sleep(wait)

    async def apace(self) -> None:
        wait = await self.areserve()
        if wait > 0:
            await asyncio.sleep(wait)


_governors: dict[tuple[str, ...], Governor] = {}
_registry_lock = threading.Lock()


def governor_for(
    api_key: str,
    rule: Rule,
    store: str = "host",
    redis_conn_id: str | None = None,
    purpose: str = "requests",
) -> Governor:
    """The governor of this key, rule and purpose in this process (made once, then shared by every hook)."""
    if store not in STORES:
        raise ValueError(f"rate_limit_store must be one of {', '.join(STORES)}, not {store!r}")
    name = f"{key_fingerprint(api_key)}-{purpose}-{rule.per_minute:g}-{rule.burst}"
    registry_key = (name, store, redis_conn_id or "")
    with _registry_lock:
        governor = _governors.get(registry_key)
        if governor is None:
            stores: list[Store] = []
            if store == "redis":
                from airflow_provider_certyneo.governor.redis_store import RedisStore

                stores.append(RedisStore(rule, name, redis_conn_id or "redis_default"))
            if store in ("redis", "host"):
                stores.append(HostStore(rule, name))
            stores.append(ProcessStore(rule))
            governor = _governors[registry_key] = Governor(stores)
        return governor


def forget_governors() -> None:
    """Drop every governor of this process (tests start each from a fresh store)."""
    with _registry_lock:
        for governor in _governors.values():
            for store in governor.stores:
                if isinstance(store, HostStore):
                    store.close()
        _governors.clear()
