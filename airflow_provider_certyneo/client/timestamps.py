"""RFC 3339 timestamps as the API writes them (UTC, milliseconds, ``Z``), read back as aware datetimes
(pendulum, which Airflow uses for its own dates); and the server's clock as seen from here."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import pendulum


def rfc3339(moment: datetime) -> str:
    return pendulum.instance(moment).in_timezone("UTC").format("YYYY-MM-DDTHH:mm:ss.SSS[Z]")


def parse_rfc3339(text: str, name: str = "timestamp") -> datetime:
    """An aware datetime; a naive one is taken as UTC. Raises ``ValueError`` naming ``name``."""
    try:
        moment = pendulum.parse(text, tz="UTC")
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an RFC 3339 timestamp, not {text!r}") from None
    if not isinstance(moment, datetime):
        raise ValueError(f"{name} must be an RFC 3339 timestamp (date and time), not {text!r}")
    return moment


def instant(text: Any) -> datetime | None:
    """The moment an RFC 3339 text names, or None when it is missing or unreadable. Timestamps are compared
    as instants, never as text: ``…:00Z`` sorts after ``…:00.500Z`` as text, yet is half a second earlier."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None


class ServerClock:
    """Certyneo's time as best known here: this machine's clock corrected by the offset read from the last
    answer's ``Date`` header. "Changed since" cursors must be in the server's time: with the machine's own
    clock, a worker running ahead of Certyneo would ask for changes from the future and miss real ones.

    ``Date`` is in whole seconds, rounded down, and read after the answer travelled: the estimate is early by
    up to a second plus the latency, never late, which for a cursor only means a little overlap."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.observed = False

    def observe(self, date_header: str | None, received_at: float) -> None:
        if not date_header:
            return
        try:
            server_time = parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            return
        if server_time.tzinfo is not None:
            self.offset = server_time.timestamp() - received_at
            self.observed = True

    def at(self, local_timestamp: float) -> datetime:
        """The server's time when this machine's clock read ``local_timestamp`` (``time.time()``)."""
        return datetime.fromtimestamp(local_timestamp + self.offset, timezone.utc)

    def now(self) -> datetime:
        return self.at(time.time())
