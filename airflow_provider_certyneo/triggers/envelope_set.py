"""CertyneoEnvelopeSetTrigger: waits until every envelope of a set is terminal (a bulk run's envelopes).

Through the shared watcher it costs about one list request per poll interval, however many envelopes it
watches, and needs no initial read of each when told when they were last known (``known_as_of``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_certyneo.outcomes import describe
from airflow_provider_certyneo.timestamps import parse_rfc3339
from airflow_provider_certyneo.triggers.watcher import DEFAULT_POLL_SHARE, watcher_for
from airflow_provider_certyneo.types import TERMINAL_STATUSES


class CertyneoEnvelopeSetTrigger(BaseTrigger):
    """One event once all ``envelope_ids`` are terminal or ``end_time`` passes: ``{"status": "success" |
    "failure" | "timeout", "completed": [ids], "failed": {id: reason}, "pending": [ids]}``."""

    def __init__(
        self,
        envelope_ids: list[str],
        certyneo_conn_id: str = "certyneo_default",
        poll_interval: float = 60.0,
        end_time: float | None = None,
        known_as_of: str | None = None,
        poll_share: float = DEFAULT_POLL_SHARE,
    ) -> None:
        super().__init__()
        if not isinstance(envelope_ids, list) or not all(isinstance(i, str) and i for i in envelope_ids):
            raise ValueError("envelope_ids must be a list of envelope id strings")
        if (
            isinstance(poll_interval, bool)
            or not isinstance(poll_interval, (int, float))
            or poll_interval <= 0
        ):
            raise ValueError(f"poll_interval must be a positive number of seconds, not {poll_interval!r}")
        if end_time is not None and not isinstance(end_time, (int, float)):
            raise ValueError(f"end_time must be epoch seconds or None, not {end_time!r}")
        self._known_since = None if known_as_of is None else parse_rfc3339(known_as_of, "known_as_of")
        self.envelope_ids = list(envelope_ids)
        self.certyneo_conn_id = certyneo_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = None if end_time is None else float(end_time)
        self.known_as_of = known_as_of
        self.poll_share = float(poll_share)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "envelope_ids": self.envelope_ids,
                "certyneo_conn_id": self.certyneo_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "known_as_of": self.known_as_of,
                "poll_share": self.poll_share,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watcher = watcher_for(self.certyneo_conn_id, self.poll_share)
        since = self._known_since
        outcomes: dict[str, tuple[str, str]] = {}

        async def follow(envelope_id: str) -> None:
            updates = watcher.updates(envelope_id, self.poll_interval, since)
            try:
                async for update in updates:
                    if update.error is not None:
                        outcomes[envelope_id] = ("ERROR", str(update.error))
                        return
                    envelope = update.envelope or {}
                    if envelope.get("status") in TERMINAL_STATUSES:
                        outcomes[envelope_id] = (envelope["status"], describe(envelope))
                        return
            finally:
                await updates.aclose()

        followers = [asyncio.create_task(follow(i)) for i in self.envelope_ids]
        remaining = None if self.end_time is None else max(0.0, self.end_time - time.time())
        _, pending = await asyncio.wait(followers, timeout=remaining)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        completed = [i for i in self.envelope_ids if outcomes.get(i, ("",))[0] == "COMPLETED"]
        failed = {
            i: outcomes[i][1] for i in self.envelope_ids if i in outcomes and outcomes[i][0] != "COMPLETED"
        }
        waiting = [i for i in self.envelope_ids if i not in outcomes]
        status = "timeout" if waiting else ("failure" if failed else "success")
        yield TriggerEvent({"status": status, "completed": completed, "failed": failed, "pending": waiting})
