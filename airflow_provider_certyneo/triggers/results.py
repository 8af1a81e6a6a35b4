"""What a waiting trigger's event says, typed: written by the trigger, read back by the task that waited.

An event crosses a process boundary (triggerer → database → worker) as a plain dict, so each shape has one
class that writes it (:meth:`payload`) and one reader that checks it (:meth:`read`): a malformed event, or
one for another envelope, fails the task with a clear message instead of a ``KeyError``.

Every wait ends in exactly one of :data:`WAIT_STATUSES`:

* ``success`` — the target was reached (every envelope terminal, for a set);
* ``failure`` — it never can be (e.g. DECLINED), with who and why;
* ``timeout`` — the deadline passed first (and only then);
* ``error`` — the wait cannot go on (revoked key, unknown envelope, a connection the triggerer cannot read,
  a bug), with what to fix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_certyneo.exceptions import CertyneoWaitError

WAIT_STATUSES = ("success", "failure", "timeout", "error")


def _checked_status(event: Any, what: str) -> dict[str, Any]:
    if not isinstance(event, dict) or event.get("status") not in WAIT_STATUSES:
        raise CertyneoWaitError(f"unexpected trigger event for {what}: {event!r}")
    return event


@dataclass(frozen=True)
class EnvelopeResult:
    """How the wait for one envelope ended; ``envelope_status`` is the status it reached, if any."""

    status: str
    envelope_id: str
    message: str
    envelope_status: str | None = None

    def payload(self) -> dict[str, Any]:
        """The event's payload: plain JSON."""
        return asdict(self)

    @classmethod
    def read(cls, event: Any, envelope_id: str) -> EnvelopeResult:
        """The event of the wait for ``envelope_id``, checked."""
        checked = _checked_status(event, f"envelope {envelope_id}")
        if checked.get("envelope_id") != envelope_id:
            raise CertyneoWaitError(
                f"trigger event is for envelope {checked.get('envelope_id')!r}, not {envelope_id!r}"
            )
        return cls(
            status=checked["status"],
            envelope_id=envelope_id,
            message=str(checked.get("message", "")),
            envelope_status=checked.get("envelope_status"),
        )


@dataclass(frozen=True)
class EnvelopeSetResult:
    """How the wait for a set of envelopes ended: which were signed, which will not be (id → why), which
    were still pending."""

    status: str
    message: str
    completed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """The event's payload: plain JSON."""
        return asdict(self)

    @classmethod
    def read(cls, event: Any) -> EnvelopeSetResult:
        """The event of a set's wait, checked."""
        checked = _checked_status(event, "a set of envelopes")
        completed, failed, pending = checked.get("completed"), checked.get("failed"), checked.get("pending")
        if checked["status"] != "error" and not (
            isinstance(completed, list) and isinstance(failed, dict) and isinstance(pending, list)
        ):
            raise CertyneoWaitError(f"unexpected trigger event for a set of envelopes: {event!r}")
        return cls(
            status=checked["status"],
            message=str(checked.get("message", "")),
            completed=list(completed or []),
            failed=dict(failed or {}),
            pending=list(pending or []),
        )

    def summary(self) -> dict[str, Any]:
        """What the bulk operator pushes to XCom as ``summary``."""
        return {"completed": self.completed, "failed": self.failed, "pending": self.pending}
