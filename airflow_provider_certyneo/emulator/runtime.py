"""Everything one running emulator holds, shared by its routes: store, limiter, counters, timers, webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import random
import secrets
import threading
import time
from collections import Counter, deque
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_certyneo.emulator.config import EmulatorConfig
from airflow_provider_certyneo.emulator.errors import ApiError
from airflow_provider_certyneo.emulator.models import rfc3339
from airflow_provider_certyneo.emulator.ratelimit import RateLimiter
from airflow_provider_certyneo.emulator.store import Store

log = logging.getLogger("certyneo.emulator")
# The request log keeps this many of the latest API requests (a long benchmark forgets its oldest ones).
REQUEST_LOG_SIZE = 100_000


class Runtime:
    def __init__(self, config: EmulatorConfig, keys: list[str]) -> None:
        self.config = config
        self.initial_keys = list(keys)
        self.store = Store(timedelta(seconds=config.envelope_lifetime_seconds))
        self.store.clock_skew = timedelta(seconds=config.clock_skew_seconds)
        self.store.on_event = self._on_event
        self.store.on_sealed = self.persist
        self.limiter = RateLimiter(config.rate_per_minute, config.burst)
        self.rng = random.Random(config.seed)
        self.counter_lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.rate_limited = 0
        self.deliveries: list[dict[str, Any]] = []
        self.request_log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        self._request_seq = 0
        # other ids an envelope answers to (control API): hostile ids a client may be handed
        self.aliases: dict[str, str] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self.reset()
        self._load()

    def reset(self) -> None:
        """Forget every object and counter; keep the configured keys (and the settings)."""
        for timer in list(self._timers):
            timer.cancel()
        self._timers.clear()
        self.store.reset()
        self.store.envelope_lifetime = timedelta(seconds=self.config.envelope_lifetime_seconds)
        self._add_initial_keys()
        self.limiter.configure(self.config.rate_per_minute, self.config.burst)
        with self.counter_lock:
            self.requests.clear()
            self.rate_limited = 0
            self.deliveries.clear()
            self.request_log.clear()
            self.aliases.clear()

    def _add_initial_keys(self) -> None:
        for index, secret in enumerate(self.initial_keys):
            environment = "live" if secret.startswith("sk_live_") else "test"
            self.store.add_key(f"emulator key {index + 1}", environment, secret)

    # State kept across restarts ----------------------------------------------------------------------

    def _load(self) -> None:
        """Serve on from the state file, if there is one (a restarted service keeps its data)."""
        path = self._state_path()
        if path is None or not path.exists():
            return
        self.store.restore(path.read_bytes())
        self._add_initial_keys()
        log.info("restored %d envelopes from %s", len(self.store.envelopes), path)

    def persist(self) -> None:
        """Write every object to the state file (atomically), as a database would have it after a change."""
        path = self._state_path()
        if path is None:
            return
        with self.store.lock:
            partial = path.with_name(f"{path.name}.part")
            partial.write_bytes(self.store.snapshot())
            os.replace(partial, path)

    def _state_path(self) -> Path | None:
        return Path(self.config.state_file) if self.config.state_file else None

    def apply_config(self, raw: dict[str, Any]) -> None:
        self.config.update(raw)
        if "ratePerMinute" in raw or "burst" in raw:
            self.limiter.configure(self.config.rate_per_minute, self.config.burst)
        self.store.envelope_lifetime = timedelta(seconds=self.config.envelope_lifetime_seconds)
        self.store.clock_skew = timedelta(seconds=self.config.clock_skew_seconds)

    def count(self, route: str) -> None:
        with self.counter_lock:
            self.requests[route] += 1

    def log_request(self, method: str, route: str, path: str, user_agent: str | None) -> dict[str, Any]:
        """A new entry of the request log, stamped with the server's arrival time (``at``: seconds on this
        machine's monotonic clock); :func:`answered` fills in how it was answered."""
        with self.counter_lock:
            self._request_seq += 1
            entry: dict[str, Any] = {
                "seq": self._request_seq,
                "at": time.monotonic(),
                "method": method,
                "route": route,
                "path": path,
                "userAgent": user_agent,
                "status": None,
                "retryAfter": None,
                "fault": None,
                "answeredAt": None,
            }
            self.request_log.append(entry)
            return entry

    def answered(self, entry: dict[str, Any], status: int | None, retry_after: str | None) -> None:
        with self.counter_lock:
            entry["status"] = status
            entry["answeredAt"] = time.monotonic()
            if retry_after is not None:
                try:
                    entry["retryAfter"] = float(retry_after)
                except ValueError:
                    entry["retryAfter"] = retry_after

    def requests_since(self, seq: int = 0) -> list[dict[str, Any]]:
        """The logged requests after ``seq``, oldest first."""
        with self.counter_lock:
            return [dict(entry) for entry in self.request_log if entry["seq"] > seq]

    def counters(self) -> dict[str, Any]:
        with self.counter_lock, self.store.lock:
            return {
                "requests": dict(self.requests),
                "requestsTotal": sum(self.requests.values()),
                "rateLimited": self.rate_limited,
                "sends": dict(self.store.sends),
                "envelopes": len(self.store.envelopes),
                "documents": len(self.store.documents),
                "webhooks": len(self.store.webhooks),
                "keys": len(self.store.keys),
                "revokedKeys": sum(1 for k in self.store.keys.values() if k.revoked_at is not None),
                "webhookDeliveries": len(self.deliveries),
            }

    def throttle(self, key_id: str) -> None:
        retry_after = self.limiter.acquire(key_id)
        if retry_after is not None:
            with self.counter_lock:
                self.rate_limited += 1
            raise ApiError(
                429,
                "rate_limited",
                f"rate limit of {self.config.rate_per_minute:g} requests per minute "
                f"(burst {self.config.burst}) exceeded; retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )

    # Timers (auto-sign) -----------------------------------------------------------------------------

    def after_send(self, envelope_id: str) -> None:
        delay = self.config.auto_sign_after
        if delay is None or self.loop is None:
            return
        action, reason = self.config.auto_action, self.config.decline_reason

        def act() -> None:
            try:
                if action == "decline":
                    self.store.decline_next(envelope_id, None, reason)
                else:
                    self.store.sign_next(envelope_id)
                self.persist()
            except ApiError as exc:
                log.info("auto-%s of %s skipped: %s", action, envelope_id, exc.message)

        def schedule() -> None:
            assert self.loop is not None
            handle = self.loop.call_later(delay, act)
            self._timers.add(handle)

        self.loop.call_soon_threadsafe(schedule)

    # Webhooks ---------------------------------------------------------------------------------------

    def _on_event(self, environment: str, kind: str, envelope: dict[str, Any]) -> None:
        if self.loop is None:
            return
        for webhook in self.store.webhooks_for(environment, kind):
            event_id = f"evt_{secrets.token_hex(12)}"
            event = {
                "id": event_id,
                "type": kind,
                "createdAt": rfc3339(self.store.now()),
                "data": {"envelope": envelope},
            }
            body = json.dumps(event, separators=(",", ":")).encode()
            signature = hmac.new(webhook.secret.encode(), body, hashlib.sha256).hexdigest()
            headers = {
                "Content-Type": "application/json",
                "X-Certyneo-Event": kind,
                "X-Certyneo-Delivery": event_id,
                "X-Certyneo-Signature": f"sha256={signature}",
            }
            self.loop.call_soon_threadsafe(self._start_delivery, webhook.url, body, headers)

    def _start_delivery(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        task = asyncio.ensure_future(self._deliver(url, body, headers))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        record: dict[str, Any] = {
            "url": url,
            "event": headers["X-Certyneo-Delivery"],
            "type": headers["X-Certyneo-Event"],
            "attempts": [],
            "delivered": False,
        }
        with self.counter_lock:
            self.deliveries.append(record)
        async with httpx.AsyncClient(timeout=10) as client:
            for attempt in range(self.config.webhook_attempts):
                if attempt:
                    await asyncio.sleep(self.config.webhook_backoff * 2 ** (attempt - 1))
                try:
                    response = await client.post(url, content=body, headers=headers)
                    record["attempts"].append(response.status_code)
                    if response.is_success:
                        record["delivered"] = True
                        return
                except httpx.HTTPError as exc:
                    record["attempts"].append(type(exc).__name__)
