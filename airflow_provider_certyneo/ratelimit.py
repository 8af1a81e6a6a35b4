"""Client-side pacing that mirrors Certyneo's own rule: a token bucket per API key.

Every hook in a process that uses the same key shares one bucket, so a process driving one key never
draws a 429. Callers *reserve* a token and then wait for their slot, which keeps them in arrival order
without a busy loop; the sync hook sleeps and the async hook awaits, and the lock is only held for a few
arithmetic operations, so it never blocks an event loop.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time

# The server's bucket starts when the first request *arrives*; if that one is slower to arrive than later
# ones (connection set-up, a cold server), later requests look early to the server. Keeping this much of
# the sustained rate out of the burst absorbs that (0.15 s: one token at Certyneo's 100/min).
SAFETY_SECONDS = 0.15


class TokenBucket:
    """``per_minute`` sustained, ``burst`` at once, less a safety margin for network jitter."""

    def __init__(self, per_minute: float, burst: int) -> None:
        if per_minute <= 0:
            raise ValueError(f"rate_limit_per_minute must be > 0, not {per_minute!r}")
        if burst < 1:
            raise ValueError(f"rate_limit_burst must be >= 1, not {burst!r}")
        self.per_second = per_minute / 60.0
        margin = max(1, math.ceil(self.per_second * SAFETY_SECONDS))
        self.capacity = float(max(1, burst - margin))
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token now; return how long to wait before using it (0 when it is free)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.per_second)
            self._updated = now
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.per_second

    def drain(self, seconds: float) -> None:
        """The server said to wait ``seconds``: nobody in this process gets a token before then."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.per_second)
            self._updated = now
            self._tokens = min(self._tokens, 1 - seconds * self.per_second)

    @property
    def tokens(self) -> float:
        with self._lock:
            elapsed = time.monotonic() - self._updated
            return min(self.capacity, self._tokens + elapsed * self.per_second)


_buckets: dict[tuple[str, float, int], TokenBucket] = {}
_registry_lock = threading.Lock()


def key_fingerprint(api_key: str) -> str:
    """A stable, non-reversible name for a key, safe to log and to use as a dictionary key."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def bucket_for(api_key: str, per_minute: float, burst: int) -> TokenBucket:
    """The process-wide bucket of this key (one per key and rule)."""
    name = (key_fingerprint(api_key), float(per_minute), int(burst))
    with _registry_lock:
        bucket = _buckets.get(name)
        if bucket is None:
            bucket = _buckets[name] = TokenBucket(per_minute, burst)
        return bucket


def forget_buckets() -> None:
    """Drop every bucket (tests that restart the emulator's clock use this)."""
    with _registry_lock:
        _buckets.clear()
