"""Time in a waiting trigger: the deadline, and holding an event back until the deferral has settled.

**Why a trigger holds its event back** (:data:`RESUME_HOLD_SECONDS`). Airflow 3.1 to 3.3 have an open race
(apache/airflow#66374, #67287, #71580, #72716): when a task defers, its worker process exits and the
executor reports "success" for that try part; if the trigger fires before the scheduler has processed that
report, the task instance has already been queued again for resumption, the scheduler reads the stale
"success" as a contradiction ("finished with state success, but the task instance's state attribute is
queued") and marks the task FAILED, although its envelope was signed. The report is processed in the
scheduler's next loop after the worker exits: normally well under a second, a few seconds when the
scheduler is busy (60 mapped tasks deferring at once on SQLite). An event that cannot fire before the
deferral is :data:`RESUME_HOLD_SECONDS` old is out of that window; the price is that a wait ends at the
earliest that long after it began, nothing for contracts that take hours to sign. The second line of
defence is that a retried send is safe (exactly once, and a COMPLETED envelope returns at once), so a task
given ``retries`` recovers if the race still strikes.
"""

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


RESUME_HOLD_SECONDS = 10.0


def not_before() -> float:
    """Epoch seconds before which a trigger deferred now must not fire (see the module's docstring): now
    plus ``[certyneo] resume_hold_seconds`` (default :data:`RESUME_HOLD_SECONDS`; 0 only where triggers run
    inline, as in ``dag.test()``, which has no scheduler to race)."""
    from airflow.providers.common.compat.sdk import conf

    hold = conf.getfloat("certyneo", "resume_hold_seconds", fallback=RESUME_HOLD_SECONDS)
    return time.time() + max(0.0, hold)


async def hold_until(not_before: float | None, end_time: float | None = None) -> None:
    """Sleep until ``not_before`` (epoch seconds), never past ``end_time``: an event fired too soon after
    the deferral can be lost to an upstream scheduler race (see the module's docstring)."""
    if not_before is None:
        return
    until = not_before if end_time is None else min(not_before, end_time)
    wait = until - time.time()
    if wait > 0:
        await asyncio.sleep(wait)
