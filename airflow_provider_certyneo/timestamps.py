"""RFC 3339 timestamps as the API writes them (UTC, milliseconds, ``Z``), read back as aware datetimes."""

from __future__ import annotations

from datetime import datetime, timezone


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str, name: str = "timestamp") -> datetime:
    """An aware datetime; a naive one is taken as UTC. Raises ``ValueError`` naming ``name``."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (AttributeError, ValueError):
        raise ValueError(f"{name} must be an RFC 3339 timestamp, not {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
