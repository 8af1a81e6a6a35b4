"""The server's rate limit: one token bucket per key, as the contract models it."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Bucket:
    capacity: float
    per_second: float
    tokens: float
    updated: float = field(default_factory=time.monotonic)

    def take(self, now: float) -> float | None:
        """Take one token; on refusal return the seconds until one is available (nothing consumed)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.per_second


class RateLimiter:
    """Token buckets keyed by API key id: ``burst`` capacity, ``per_minute`` refill."""

    def __init__(self, per_minute: float = 100, burst: int = 200) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, Bucket] = {}
        self.configure(per_minute, burst)

    def configure(self, per_minute: float, burst: int) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("rate must be > 0 per minute and burst >= 1")
        with self._lock:
            self.per_minute = per_minute
            self.burst = burst
            self._buckets.clear()

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    def acquire(self, key_id: str) -> int | None:
        """None when the request may go on, else the integer ``Retry-After`` (rounded up, at least 1)."""
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = Bucket(float(self.burst), self.per_minute / 60.0, float(self.burst))
                self._buckets[key_id] = bucket
            wait = bucket.take(time.monotonic())
        if wait is None:
            return None
        return max(1, math.ceil(wait))
