"""CertyneoEnvelopeTrigger: waits in the triggerer until an envelope reaches a target status.

All triggers of one connection in a triggerer share one poller (:mod:`.watcher`): their polling costs about
one request per poll interval, not one per trigger.

It holds ids and numbers only (never a key), shares the event loop with a thousand others (every wait is
an ``await``), rides out transient API errors and 429s, and ends in exactly one event:

* ``success`` — the envelope reached a target status;
* ``failure`` — it reached a status from which no target can be reached (e.g. DECLINED), with who and why;
* ``timeout`` — ``end_time`` passed first (and only then);
* ``error`` — an error no retry can fix (revoked key, unknown envelope, a connection the triggerer cannot
  read, a bug), with what to fix.

No event fires before ``not_before`` (epoch seconds; the operators pass the deferral time plus
:data:`~airflow_provider_certyneo.waiting.RESUME_HOLD_SECONDS`): see :mod:`airflow_provider_certyneo.waiting`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_certyneo.client import defaults
from airflow_provider_certyneo.client.outcomes import can_still_become, describe, progress
from airflow_provider_certyneo.triggers.arguments import (
    DEFAULT_POLL_SHARE,
    WaitArguments,
    envelope_id_arg,
    target_statuses_arg,
)
from airflow_provider_certyneo.triggers.failures import explain
from airflow_provider_certyneo.triggers.timing import deadline_passed, hold_until, remaining
from airflow_provider_certyneo.triggers.watcher import watcher_for

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
    :param not_before: epoch seconds before which the event is held back (None: fire at once).

    Arguments are checked by :class:`~airflow_provider_certyneo.triggers.arguments.WaitArguments` when the
    trigger is made, so a bad one fails at ``defer()`` time.
    """

    def __init__(
        self,
        envelope_id: str,
        certyneo_conn_id: str = defaults.CONN_ID,
        poll_interval: float = 60.0,
        end_time: float | None = None,
        target_statuses: Sequence[str] = ("COMPLETED",),
        poll_share: float = DEFAULT_POLL_SHARE,
        known_as_of: str | None = None,
        not_before: float | None = None,
    ) -> None:
        super().__init__()
        self.envelope_id = envelope_id_arg(envelope_id)
        self.target_statuses = target_statuses_arg(target_statuses)
        self.wait = WaitArguments(
            certyneo_conn_id, poll_interval, end_time, poll_share, known_as_of, not_before
        )
        self.certyneo_conn_id = self.wait.certyneo_conn_id
        self.poll_interval = self.wait.poll_interval
        self.end_time = self.wait.end_time
        self.poll_share = self.wait.poll_share
        self.known_as_of = self.wait.known_as_of
        self.not_before = self.wait.not_before

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and kwargs: ids and numbers only, never a key."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "envelope_id": self.envelope_id,
                "target_statuses": list(self.target_statuses),
                **self.wait.serialize(),
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
        """Wait on the shared poller until one event ends the wait."""
        event = await self._outcome()
        await hold_until(self.not_before, self.end_time)
        yield event

    async def _outcome(self) -> TriggerEvent:
        """The one event that ends this wait. ``timeout`` only once ``end_time`` has really passed: a poller
        that stops for any other reason ends the wait with ``error`` (never a void on timeout)."""
        watcher = watcher_for(self.certyneo_conn_id, self.poll_share)
        updates = watcher.updates(self.envelope_id, self.poll_interval, self.wait.known_since)
        last_line: str | None = None
        try:
            while True:
                try:
                    update = await asyncio.wait_for(updates.__anext__(), timeout=remaining(self.end_time))
                except TimeoutError:
                    if deadline_passed(self.end_time):
                        return self._event(
                            "timeout",
                            f"envelope {self.envelope_id} did not reach "
                            f"{' or '.join(self.target_statuses)} before the deadline",
                        )
                    return self._event("error", f"waiting for envelope {self.envelope_id} timed out early")
                except StopAsyncIteration:
                    return self._event("error", f"the poller stopped watching envelope {self.envelope_id}")
                except Exception as exc:
                    self.log.exception("waiting for envelope %s failed", self.envelope_id)
                    return self._event(
                        "error", explain(exc, self.certyneo_conn_id) + f" (waiting for {self.envelope_id})"
                    )
                if update.error is not None:
                    return self._event("error", update.error)
                envelope = update.envelope or {}
                status = envelope.get("status", "")
                line = progress(envelope)
                # the caller logged the state it knew (known_as_of); the first look may return it again
                already_known = bool(self.known_as_of) and str(envelope.get("updatedAt")) <= str(
                    self.known_as_of
                )
                if line != last_line and not already_known:
                    last_line = line
                    self.log.info("envelope %s: %s", self.envelope_id, line)
                if status in self.target_statuses:
                    return self._event("success", describe(envelope), status)
                if not can_still_become(status, self.target_statuses):
                    return self._event("failure", describe(envelope), status)
        finally:
            await updates.aclose()
