"""CertyneoEnvelopeTrigger: waits in the triggerer until an envelope reaches a target status.

All triggers of one connection in a triggerer share one poller (:mod:`.watcher`): their polling costs about
one request per poll interval, not one per trigger.

It holds ids and numbers only (never a key), shares the event loop with a thousand others (every wait is
an ``await``), rides out transient API errors and 429s, and ends in exactly one event:

* ``success`` — the envelope reached a target status;
* ``failure`` — it reached a status from which no target can be reached (e.g. DECLINED), with who and why;
* ``timeout`` — ``end_time`` passed first;
* ``error`` — an error no retry can fix (revoked key, unknown envelope).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_certyneo.outcomes import can_still_become, describe
from airflow_provider_certyneo.timestamps import parse_rfc3339
from airflow_provider_certyneo.triggers.watcher import DEFAULT_POLL_SHARE, watcher_for
from airflow_provider_certyneo.types import KNOWN_STATUSES

EVENT_STATUSES = ("success", "failure", "timeout", "error")


class CertyneoEnvelopeTrigger(BaseTrigger):
    """
    :param envelope_id: the envelope to watch.
    :param certyneo_conn_id: the ``certyneo`` connection (looked up asynchronously in the triggerer).
    :param poll_interval: seconds between two reads of the envelope.
    :param end_time: epoch seconds after which a ``timeout`` event ends the wait (None: no deadline).
    :param target_statuses: statuses that count as success (default COMPLETED).
    :param known_as_of: the envelope's ``updatedAt`` when the caller last read it and found it still waiting:
        only later changes are looked for (no initial read). Default: read it first.
    :param poll_share: the share of the key's rate limit that all waiting triggers of this connection in a
        triggerer may spend on polling together (default half), however many they are.
    """

    def __init__(
        self,
        envelope_id: str,
        certyneo_conn_id: str = "certyneo_default",
        poll_interval: float = 60.0,
        end_time: float | None = None,
        target_statuses: Sequence[str] = ("COMPLETED",),
        poll_share: float = DEFAULT_POLL_SHARE,
        known_as_of: str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(envelope_id, str) or not envelope_id:
            raise ValueError(f"envelope_id must be a non-empty string, not {envelope_id!r}")
        if not isinstance(certyneo_conn_id, str) or not certyneo_conn_id:
            raise ValueError(f"certyneo_conn_id must be a non-empty string, not {certyneo_conn_id!r}")
        if (
            isinstance(poll_interval, bool)
            or not isinstance(poll_interval, (int, float))
            or poll_interval <= 0
        ):
            raise ValueError(f"poll_interval must be a positive number of seconds, not {poll_interval!r}")
        if end_time is not None and (isinstance(end_time, bool) or not isinstance(end_time, (int, float))):
            raise ValueError(f"end_time must be epoch seconds (a number) or None, not {end_time!r}")
        if (
            isinstance(poll_share, bool)
            or not isinstance(poll_share, (int, float))
            or not 0 < poll_share <= 1
        ):
            raise ValueError(f"poll_share must be a share of the rate limit in (0, 1], not {poll_share!r}")
        targets = [target_statuses] if isinstance(target_statuses, str) else list(target_statuses)
        unknown = [s for s in targets if s not in KNOWN_STATUSES]
        if not targets or unknown:
            raise ValueError(f"target_statuses must be among {sorted(KNOWN_STATUSES)}, not {targets!r}")
        self.envelope_id = envelope_id
        self.certyneo_conn_id = certyneo_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time) if end_time is not None else None
        self.target_statuses = targets
        self.poll_share = float(poll_share)
        self._known_since = None if known_as_of is None else parse_rfc3339(known_as_of, "known_as_of")
        self.known_as_of = known_as_of

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "envelope_id": self.envelope_id,
                "certyneo_conn_id": self.certyneo_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "target_statuses": list(self.target_statuses),
                "poll_share": self.poll_share,
                "known_as_of": self.known_as_of,
            },
        )

    def _event(self, status: str, message: str, envelope_status: str | None = None) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "envelope_id": self.envelope_id,
                "envelope_status": envelope_status,
                "message": message,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watcher = watcher_for(self.certyneo_conn_id, self.poll_share)
        updates = watcher.updates(self.envelope_id, self.poll_interval, self._known_since)
        try:
            while True:
                try:
                    update = await asyncio.wait_for(updates.__anext__(), timeout=self._remaining())
                except asyncio.TimeoutError:
                    yield self._event(
                        "timeout",
                        f"envelope {self.envelope_id} did not reach "
                        f"{' or '.join(self.target_statuses)} before the deadline",
                    )
                    return
                if update.error is not None:
                    yield self._event("error", str(update.error))
                    return
                envelope = update.envelope or {}
                status = envelope.get("status", "")
                if status in self.target_statuses:
                    yield self._event("success", describe(envelope), status)
                    return
                if not can_still_become(status, self.target_statuses):
                    yield self._event("failure", describe(envelope), status)
                    return
                if status not in KNOWN_STATUSES:
                    self.log.warning(
                        "envelope %s has status %r, unknown to this provider: still waiting",
                        self.envelope_id,
                        status,
                    )
                self.log.info(
                    "envelope %s is %s; watching for changes every %.1f s",
                    self.envelope_id,
                    status,
                    self.poll_interval,
                )
        finally:
            await updates.aclose()

    def _remaining(self) -> float | None:
        return None if self.end_time is None else max(0.0, self.end_time - time.time())
