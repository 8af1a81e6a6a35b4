"""The one schema of the Certyneo triggers' arguments, checked when a trigger is made.

Both triggers (one envelope, a set of envelopes) take the same waiting arguments; checking them here, in the
trigger's ``__init__``, makes a bad value fail at ``defer()`` time in the worker, with a message naming the
argument, instead of in the triggerer, where nobody reads the log. The values kept are plain numbers and
strings (trigger kwargs are serialized), never a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from airflow_provider_certyneo.client import defaults
from airflow_provider_certyneo.client.timestamps import parse_rfc3339
from airflow_provider_certyneo.client.types import KNOWN_STATUSES


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _epoch_or_none(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if not _is_number(value):
        raise ValueError(f"{name} must be epoch seconds (a number) or None, not {value!r}")
    return float(value)


def non_empty_string_arg(name: str, value: Any) -> str:
    """A non-empty string (an id)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, not {value!r}")
    return value


def conn_id_arg(value: Any) -> str:
    """A non-empty connection id."""
    return non_empty_string_arg("certyneo_conn_id", value)


def seconds_arg(name: str, value: Any) -> float:
    """A positive number of seconds."""
    if not _is_number(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def envelope_id_arg(value: Any) -> str:
    """A non-empty envelope id."""
    return non_empty_string_arg("envelope_id", value)


def envelope_ids_arg(value: Any) -> list[str]:
    """A non-empty list of envelope ids."""
    if not isinstance(value, list) or not all(isinstance(i, str) and i for i in value):
        raise ValueError(f"envelope_ids must be a list of envelope id strings, not {value!r}")
    return list(value)


def target_statuses_arg(value: str | Sequence[str]) -> list[str]:
    """Known statuses, at least one."""
    targets = [value] if isinstance(value, str) else list(value)
    unknown = [s for s in targets if s not in KNOWN_STATUSES]
    if not targets or unknown:
        raise ValueError(f"target_statuses must be among {sorted(KNOWN_STATUSES)}, not {targets!r}")
    return targets


@dataclass(frozen=True)
class WaitArguments:
    """What every Certyneo trigger needs to wait, checked.

    :param certyneo_conn_id: the ``certyneo`` connection, looked up in the triggerer.
    :param poll_interval: seconds between two looks for changes.
    :param end_time: epoch seconds after which the wait ends with ``timeout`` (None: no deadline).
    :param poll_share: the share of the key's rate limit that polling may spend, in (0, 1].
    :param known_as_of: the ``updatedAt`` (RFC 3339) at which the caller last saw the envelopes waiting.
    :param not_before: epoch seconds before which no event is fired (see :mod:`.timing`: the deferral must
        have settled in the scheduler before the task is resumed).
    """

    certyneo_conn_id: str = defaults.CONN_ID
    poll_interval: float = 60.0
    end_time: float | None = None
    poll_share: float = defaults.POLL_SHARE
    known_as_of: str | None = None
    not_before: float | None = None

    def __post_init__(self) -> None:
        conn_id_arg(self.certyneo_conn_id)
        object.__setattr__(self, "poll_interval", seconds_arg("poll_interval", self.poll_interval))
        if not _is_number(self.poll_share) or not 0 < self.poll_share <= 1:
            raise ValueError(
                f"poll_share must be a share of the rate limit in (0, 1], not {self.poll_share!r}"
            )
        if self.known_as_of is not None:
            if not isinstance(self.known_as_of, str):
                raise ValueError(
                    f"known_as_of must be an RFC 3339 timestamp or None, not {self.known_as_of!r}"
                )
            parse_rfc3339(self.known_as_of, "known_as_of")
        object.__setattr__(self, "poll_share", float(self.poll_share))
        object.__setattr__(self, "end_time", _epoch_or_none("end_time", self.end_time))
        object.__setattr__(self, "not_before", _epoch_or_none("not_before", self.not_before))

    @property
    def known_since(self) -> datetime | None:
        """``known_as_of`` as an aware datetime (None: read the envelope first)."""
        return None if self.known_as_of is None else parse_rfc3339(self.known_as_of, "known_as_of")

    def serialize(self) -> dict[str, Any]:
        """The arguments as trigger kwargs: ids, numbers and timestamps only."""
        return asdict(self)
