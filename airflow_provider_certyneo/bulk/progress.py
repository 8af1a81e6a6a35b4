"""What a bulk send tells ops while it runs and when it ends: a progress line every few seconds (only when
something moved), with the time left at the key's rate, and a summary table. Never a key, never a sign URL:
the lines hold counts, row ids and error texts (which never carry either)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from airflow_provider_certyneo.client.defaults import PROGRESS_INTERVAL


def duration(seconds: float) -> str:
    """``40 s``, ``6 min``, ``1 h 05 min``: as precise as an estimate deserves."""
    if seconds < 90:
        return f"{max(0, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


class BulkProgress:
    """Counts of a bulk run, and the lines that report them.

    :param total: rows in the run.
    :param rate_per_minute: the key's pace (the connection's ``rate_limit_per_minute``).
    :param uploads_needed: distinct PDFs still to upload (each costs one request; a row costs two more).
    """

    def __init__(self, total: int, rate_per_minute: float, uploads_needed: int) -> None:
        self.total = total
        self.rate_per_minute = rate_per_minute
        self.uploads_left = uploads_needed
        self.sent = 0
        self.resumed = 0
        self.failed = 0
        self.started = time.monotonic()

    def uploaded(self) -> None:
        self.uploads_left = max(0, self.uploads_left - 1)

    def requests_left(self) -> int:
        return 2 * (self.total - self.sent - self.failed) + self.uploads_left

    def line(self) -> str:
        """``400/1000 sent, 0 failed, about 6 min left at the key's rate``."""
        done = self.sent + self.failed
        line = f"{self.sent}/{self.total} sent, {self.failed} failed"
        if done < self.total:
            left = self.requests_left() / (self.rate_per_minute / 60.0)
            line += f", about {duration(left)} left at the key's rate ({self.rate_per_minute:g}/min)"
        return line

    async def report(
        self,
        emit: Callable[[str], None],
        every: float = PROGRESS_INTERVAL,
        tick: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """Emit :meth:`line` every ``every`` seconds while the run goes on, only when a count moved. Cancel
        it when the run ends. ``tick`` (default: sleep ``every`` seconds) is what one interval waits for."""
        last: tuple[int, int] | None = (0, 0)
        while True:
            await (tick() if tick is not None else asyncio.sleep(every))
            counts = (self.sent, self.failed)
            if counts != last:
                last = counts
                emit(self.line())

    def summary(self, results: list[dict[str, Any]]) -> str:
        """The table logged at the end: how many rows ended how, and the time it took."""
        failed = [r for r in results if r.get("error")]
        transient = sum(1 for r in failed if r.get("retryable"))
        sent = len(results) - len(failed)
        elapsed = time.monotonic() - self.started
        rows = [
            ("sent", sent),
            ("  of which already sent by an earlier try", self.resumed),
            ("failed, will not succeed as is (bad row)", len(failed) - transient),
            ("failed, transient (a retry sends them)", transient),
            ("total", len(results)),
        ]
        width = max(len(name) for name, _ in rows)
        table = "\n".join(f"  {name:<{width}}  {count:>7}" for name, count in rows)
        per_row = f", {elapsed / len(results):.2f} s per contract" if results else ""
        return f"Bulk send summary ({duration(elapsed)}{per_row}):\n{table}"
