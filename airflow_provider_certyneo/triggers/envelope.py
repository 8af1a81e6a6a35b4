"""CertyneoEnvelopeTrigger: waits in the triggerer until an envelope reaches a target status.

All triggers of one connection in a triggerer share one poller (:mod:`.watcher`): their polling costs about
one request per poll interval, not one per trigger.

It holds ids and numbers only (never a key), shares the event loop with a thousand others (every wait is
an ``await``), rides out transient API errors and 429s, and ends in exactly one
:class:`~.results.EnvelopeResult` (``success``, ``failure``, ``timeout`` or ``error``). What every wait
shares — arguments, serialization, the hold before firing — is in :class:`~.base.CertyneoWaitTrigger`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from airflow_provider_certyneo.client import defaults
from airflow_provider_certyneo.client.outcomes import can_still_become, describe, progress
from airflow_provider_certyneo.client.timestamps import instant
from airflow_provider_certyneo.triggers.arguments import WaitArguments, envelope_id_arg, target_statuses_arg
from airflow_provider_certyneo.triggers.base import CertyneoWaitTrigger
from airflow_provider_certyneo.triggers.failures import explain
from airflow_provider_certyneo.triggers.results import EnvelopeResult
from airflow_provider_certyneo.triggers.timing import deadline_passed, remaining
from airflow_provider_certyneo.triggers.watcher import watcher_for


class CertyneoEnvelopeTrigger(CertyneoWaitTrigger[EnvelopeResult]):
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
    """

    def __init__(
        self,
        envelope_id: str,
        certyneo_conn_id: str = defaults.CONN_ID,
        poll_interval: float = 60.0,
        end_time: float | None = None,
        target_statuses: Sequence[str] = ("COMPLETED",),
        poll_share: float = defaults.POLL_SHARE,
        known_as_of: str | None = None,
        not_before: float | None = None,
    ) -> None:
        super().__init__(
            WaitArguments(certyneo_conn_id, poll_interval, end_time, poll_share, known_as_of, not_before)
        )
        self.envelope_id = envelope_id_arg(envelope_id)
        self.target_statuses = target_statuses_arg(target_statuses)

    def subject(self) -> dict[str, Any]:
        """The envelope and the statuses that end the wait."""
        return {"envelope_id": self.envelope_id, "target_statuses": list(self.target_statuses)}

    def error(self, message: str) -> EnvelopeResult:
        """The wait for this envelope cannot go on."""
        return EnvelopeResult("error", self.envelope_id, message)

    def _already_known(self, envelope: dict[str, Any]) -> bool:
        """The state the caller logged before deferring (``known_as_of``): the first look may return it."""
        known, updated = self.wait.known_since, instant(envelope.get("updatedAt"))
        return known is not None and updated is not None and updated <= known

    async def outcome(self) -> EnvelopeResult:
        """The one result that ends this wait. ``timeout`` only once ``end_time`` has really passed: a poller
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
                        return EnvelopeResult(
                            "timeout",
                            self.envelope_id,
                            f"envelope {self.envelope_id} did not reach "
                            f"{' or '.join(self.target_statuses)} before the deadline",
                        )
                    return self.error(f"waiting for envelope {self.envelope_id} timed out early")
                except StopAsyncIteration:
                    return self.error(f"the poller stopped watching envelope {self.envelope_id}")
                except Exception as exc:
                    self.log.exception("waiting for envelope %s failed", self.envelope_id)
                    return self.error(
                        explain(exc, self.certyneo_conn_id) + f" (waiting for {self.envelope_id})"
                    )
                if update.error is not None:
                    return self.error(update.error)
                envelope = update.envelope or {}
                status = envelope.get("status", "")
                line = progress(envelope)
                # the caller logged the state it knew (known_as_of); the first look may return it again
                already_known = self._already_known(envelope)
                if line != last_line and not already_known:
                    last_line = line
                    self.log.info("envelope %s: %s", self.envelope_id, line)
                if status in self.target_statuses:
                    return EnvelopeResult("success", self.envelope_id, describe(envelope), status)
                if not can_still_become(status, self.target_statuses):
                    return EnvelopeResult("failure", self.envelope_id, describe(envelope), status)
        finally:
            await updates.aclose()
