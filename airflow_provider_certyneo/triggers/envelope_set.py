"""CertyneoEnvelopeSetTrigger: waits until every envelope of a set is terminal (a bulk run's envelopes).

Through the shared watcher it costs about one list request per poll interval, however many envelopes it
watches, and needs no initial read of each when told when they were last known (``known_as_of``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from airflow_provider_certyneo.client import defaults
from airflow_provider_certyneo.client.defaults import PROGRESS_INTERVAL
from airflow_provider_certyneo.client.outcomes import describe
from airflow_provider_certyneo.client.types import TERMINAL_STATUSES
from airflow_provider_certyneo.triggers.arguments import WaitArguments, envelope_ids_arg
from airflow_provider_certyneo.triggers.base import CertyneoWaitTrigger
from airflow_provider_certyneo.triggers.failures import explain
from airflow_provider_certyneo.triggers.results import EnvelopeSetResult
from airflow_provider_certyneo.triggers.timing import deadline_passed, remaining
from airflow_provider_certyneo.triggers.watcher import watcher_for


class CertyneoEnvelopeSetTrigger(CertyneoWaitTrigger[EnvelopeSetResult]):
    """One :class:`~.results.EnvelopeSetResult` once all ``envelope_ids`` are terminal or ``end_time``
    passes: ``success`` (all signed), ``failure`` (some will not be: id → why), ``timeout`` only when the
    deadline has really passed, ``error`` when the poller could not go on (its message says what to fix).
    Arguments: :class:`~.arguments.WaitArguments`."""

    def __init__(
        self,
        envelope_ids: list[str],
        certyneo_conn_id: str = defaults.CONN_ID,
        poll_interval: float = 60.0,
        end_time: float | None = None,
        known_as_of: str | None = None,
        poll_share: float = defaults.POLL_SHARE,
        not_before: float | None = None,
    ) -> None:
        super().__init__(
            WaitArguments(certyneo_conn_id, poll_interval, end_time, poll_share, known_as_of, not_before)
        )
        self.envelope_ids = envelope_ids_arg(envelope_ids)

    def subject(self) -> dict[str, Any]:
        """The envelopes waited on."""
        return {"envelope_ids": self.envelope_ids}

    def error(self, message: str) -> EnvelopeSetResult:
        """The wait cannot go on."""
        return EnvelopeSetResult("error", message, pending=list(self.envelope_ids))

    async def outcome(self) -> EnvelopeSetResult:
        """Wait on the shared poller until every envelope of the set is terminal, or the wait ends."""
        watcher = watcher_for(self.certyneo_conn_id, self.poll_share)
        since = self.wait.known_since
        outcomes: dict[str, tuple[str, str]] = {}
        errors: list[str] = []

        async def follow(envelope_id: str) -> None:
            updates = watcher.updates(envelope_id, self.poll_interval, since)
            try:
                async for update in updates:
                    if update.error is not None:
                        outcomes[envelope_id] = ("ERROR", update.error)
                        errors.append(update.error)
                        return
                    envelope = update.envelope or {}
                    if envelope.get("status") in TERMINAL_STATUSES:
                        outcomes[envelope_id] = (envelope["status"], describe(envelope))
                        return
                errors.append(f"the poller stopped watching envelope {envelope_id}")
            except Exception as exc:
                self.log.exception("waiting for envelope %s failed", envelope_id)
                errors.append(explain(exc, self.certyneo_conn_id))
            finally:
                await updates.aclose()

        followers = [asyncio.create_task(follow(i)) for i in self.envelope_ids]
        unfinished = set(followers)
        reported: tuple[int, int] | None = None
        last_report = 0.0
        while unfinished and not errors:
            left = remaining(self.end_time)
            _, unfinished = await asyncio.wait(
                unfinished,
                timeout=PROGRESS_INTERVAL if left is None else min(left, PROGRESS_INTERVAL),
                return_when=asyncio.FIRST_COMPLETED,
            )
            counts = (
                sum(1 for s, _ in outcomes.values() if s == "COMPLETED"),
                sum(1 for s, _ in outcomes.values() if s != "COMPLETED"),
            )
            now = time.monotonic()
            if counts != reported and (now - last_report >= PROGRESS_INTERVAL or not unfinished):
                reported, last_report = counts, now
                waiting_now = len(self.envelope_ids) - sum(counts)
                self.log.info(
                    "%d/%d signed, %d will not be (declined, voided or expired), %d waiting",
                    counts[0],
                    len(self.envelope_ids),
                    counts[1],
                    waiting_now,
                )
            if unfinished and not errors and deadline_passed(self.end_time):
                break
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        completed = [i for i in self.envelope_ids if outcomes.get(i, ("",))[0] == "COMPLETED"]
        failed = {
            i: outcomes[i][1] for i in self.envelope_ids if i in outcomes and outcomes[i][0] != "COMPLETED"
        }
        waiting = [i for i in self.envelope_ids if i not in outcomes]
        if errors:
            status, message = "error", errors[0]
        elif waiting:
            status, message = "timeout", f"{len(waiting)} envelopes were not terminal before the deadline"
        else:
            status = "failure" if failed else "success"
            message = f"{len(completed)} signed, {len(failed)} not signed"
        return EnvelopeSetResult(status, message, completed, failed, waiting)
