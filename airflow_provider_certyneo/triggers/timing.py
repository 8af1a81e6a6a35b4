"""Time in a waiting trigger: the deadline, and holding an event back until the deferral has settled."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

# How far back each "what changed since my last look?" reaches before the last look: changes committed while
# that list was in flight, and the error of the server-clock estimate. Shared by the poller and the watcher.
OVERLAP = timedelta(seconds=10)


def remaining(end_time: float | None) -> float | None:
    """Seconds left before ``end_time`` (epoch seconds), or None without a deadline."""
    return None if end_time is None else max(0.0, end_time - time.time())


CLOCK_TOLERANCE = 1.0


def deadline_passed(end_time: float | None) -> bool:
    """True only when there is a deadline and it has passed: the one case for a ``timeout`` event. A wait
    measured on the monotonic clock may end a hair before the wall clock agrees: a second's tolerance."""
    return end_time is not None and time.time() >= end_time - CLOCK_TOLERANCE


async def hold_until(not_before: float | None, end_time: float | None = None) -> None:
    """Sleep until ``not_before`` (epoch seconds), never past ``end_time``: an event fired too soon after
    the deferral can be lost to an upstream scheduler race (see :mod:`airflow_provider_certyneo.waiting`)."""
    if not_before is None:
        return
    until = not_before if end_time is None else min(not_before, end_time)
    wait = until - time.time()
    if wait > 0:
        await asyncio.sleep(wait)
