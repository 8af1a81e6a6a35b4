"""Waiting for an envelope from a task: the deadline, the trigger, and reading the trigger's event."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_certyneo.exceptions import CertyneoWaitError

if TYPE_CHECKING:
    from airflow.sdk import Context

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


def make_trigger(
    envelope_id: str,
    conn_id: str,
    poll_interval: float,
    end_time: float | None,
    targets: list[str],
    known_as_of: str | None = None,
) -> CertyneoEnvelopeTrigger:
    """The trigger for this wait; ``known_as_of`` (the envelope's ``updatedAt``, just read) saves a read."""
    from airflow_provider_certyneo.triggers.envelope import CertyneoEnvelopeTrigger

    return CertyneoEnvelopeTrigger(
        envelope_id, conn_id, poll_interval, end_time, targets, known_as_of=known_as_of
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
