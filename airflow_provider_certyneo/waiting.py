"""Waiting for an envelope from a task: the deadline, the trigger, and reading the trigger's event.

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
from typing import TYPE_CHECKING, Any

from airflow_provider_certyneo.exceptions import CertyneoWaitError

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

    from airflow_provider_certyneo.triggers.envelope import CertyneoEnvelopeTrigger


def deadline(
    context: Context, timeout: timedelta | float | None, execution_timeout: timedelta | None
) -> float | None:
    """Epoch seconds at which waiting must stop: the earlier of ``timeout`` from now and the task's
    ``execution_timeout`` counted from its start (which Airflow does not enforce while deferred)."""
    now = time.time()
    candidates: list[float] = []
    if timeout is not None:
        candidates.append(
            now + (timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout))
        )
    if execution_timeout is not None:
        started = getattr(context.get("ti"), "start_date", None)
        start = started.timestamp() if started is not None else now
        candidates.append(start + execution_timeout.total_seconds())
    return min(candidates) if candidates else None


RESUME_HOLD_SECONDS = 10.0
DEFER_GRACE_SECONDS = 60.0


def defer_timeout(end_time: float | None) -> timedelta | None:
    """Airflow's own timeout for a deferral: a backstop :data:`DEFER_GRACE_SECONDS` after the deadline.
    The trigger itself ends the wait with a ``timeout`` event at ``end_time``; this only catches a trigger
    that could not (its triggerer gone), so the same grace serves every operator and the sensor."""
    if end_time is None:
        return None
    return timedelta(seconds=max(0.0, end_time - time.time()) + DEFER_GRACE_SECONDS)


def wait_in_worker(trigger: BaseTrigger) -> dict[str, Any]:
    """Run ``trigger`` in this task's own process, for waits that do not defer: one way to wait, the same
    code and the same events as in the triggerer."""

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            payload: dict[str, Any] = event.payload
            return payload
        raise CertyneoWaitError("the wait ended without an outcome")

    return asyncio.run(first_event())


def not_before() -> float:
    """Epoch seconds before which a trigger made now must not fire (see the module's docstring): now plus
    ``[certyneo] resume_hold_seconds`` (default :data:`RESUME_HOLD_SECONDS`; 0 only where triggers run
    inline, as in ``dag.test()``, which has no scheduler to race)."""
    from airflow.providers.common.compat.sdk import conf

    hold = conf.getfloat("certyneo", "resume_hold_seconds", fallback=RESUME_HOLD_SECONDS)
    return time.time() + max(0.0, hold)


def make_trigger(
    envelope_id: str,
    conn_id: str,
    poll_interval: float,
    end_time: float | None,
    targets: list[str],
    known_as_of: str | None = None,
    hold: bool = True,
) -> CertyneoEnvelopeTrigger:
    """The trigger for this wait; ``known_as_of`` (the envelope's ``updatedAt``, just read) saves a read.
    Its event is held until :data:`RESUME_HOLD_SECONDS` after now, the deferral."""
    from airflow_provider_certyneo.triggers.envelope import CertyneoEnvelopeTrigger

    return CertyneoEnvelopeTrigger(
        envelope_id,
        conn_id,
        poll_interval,
        end_time,
        targets,
        known_as_of=known_as_of,
        not_before=not_before() if hold else None,
    )


def read_event(event: Any, envelope_id: str) -> dict[str, Any]:
    """The trigger's event, checked: a dict for this envelope with a known status, else a clear error."""
    from airflow_provider_certyneo.triggers.envelope import EVENT_STATUSES

    if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES:
        raise CertyneoWaitError(f"unexpected trigger event for envelope {envelope_id}: {event!r}")
    if event.get("envelope_id") != envelope_id:
        raise CertyneoWaitError(
            f"trigger event is for envelope {event.get('envelope_id')!r}, not {envelope_id!r}"
        )
    return event
