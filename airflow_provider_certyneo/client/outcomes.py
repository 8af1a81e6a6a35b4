"""What an envelope's status means for a task waiting on it: done, still waiting, or never going to happen.

Pure functions, shared by the trigger, the sensor and the send operator's synchronous wait.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_certyneo.client.timestamps import instant
from airflow_provider_certyneo.client.types import KNOWN_STATUSES, TERMINAL_STATUSES

REACHABLE: dict[str, frozenset[str]] = {
    "DRAFT": frozenset({"SENT", *TERMINAL_STATUSES}),
    "SENT": TERMINAL_STATUSES,
}


def can_still_become(status: str, targets: Collection[str]) -> bool:
    """False once ``status`` can never turn into one of ``targets`` (a terminal status, or one past them).
    A status this provider does not know is treated as not terminal."""
    if status in targets:
        return True
    if status not in KNOWN_STATUSES:
        return True
    return bool(REACHABLE.get(status, frozenset()) & set(targets))


def describe(envelope: dict[str, Any]) -> str:
    """One line for the task log: which envelope, its status, and for a failure who and why."""
    status = envelope.get("status", "?")
    head = f"envelope {envelope.get('id')} ({envelope.get('subject', '')!r}) is {status}"
    recipients = envelope.get("recipients") or []
    if status == "DECLINED":
        decliners = [r for r in recipients if r.get("status") == "DECLINED"]
        if decliners:
            who = decliners[0]
            reason = who.get("declineReason") or "no reason given"
            return f"{head}: declined by {who.get('name')} <{who.get('email')}>, reason: {reason}"
    if status in ("EXPIRED", "VOIDED", "SENT"):
        pending = [
            f"{r.get('name')} <{r.get('email')}>"
            for r in recipients
            if r.get("role", "SIGNER") == "SIGNER" and r.get("status") == "PENDING"
        ]
        if pending:
            return f"{head}; not signed by {', '.join(pending)}"
    return head


def _moment(text: Any) -> datetime | None:
    """The instant in UTC, or None when missing or unreadable."""
    moment = instant(text)
    return None if moment is None else moment.astimezone(timezone.utc)


def at(text: Any, day_of: Any = None) -> str:
    """A timestamp for a log line, in UTC: ``10:02`` on the day of ``day_of`` (the envelope's last change),
    ``28 Nov 10:02`` on another day, ``?`` when missing or unreadable."""
    moment = _moment(text)
    if moment is None:
        return "?"
    reference = _moment(day_of)
    if reference is not None and reference.date() != moment.date():
        return moment.strftime("%d %b %H:%M")
    return moment.strftime("%H:%M")


def who(recipient: dict[str, Any]) -> str:
    """``Name <email>`` (never a sign URL)."""
    return f"{recipient.get('name') or '?'} <{recipient.get('email') or '?'}>"


def _signers(envelope: dict[str, Any]) -> list[dict[str, Any]]:
    signers = [r for r in envelope.get("recipients") or [] if r.get("role", "SIGNER") == "SIGNER"]
    return sorted(signers, key=lambda r: r.get("order") or 0)


def holding_up(envelope: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The signers whose signature the envelope waits for now, and since when (RFC 3339). In SEQUENTIAL
    order only the lowest pending ``order`` may sign, since the previous signer signed (or the sending); in
    PARALLEL order every pending signer, since the sending."""
    signers = _signers(envelope)
    pending = [r for r in signers if r.get("status", "PENDING") == "PENDING"]
    if not pending:
        return [], None
    if envelope.get("signingOrder") != "SEQUENTIAL":
        return pending, envelope.get("sentAt")
    turn = pending[0].get("order") or 0
    now_up = [r for r in pending if (r.get("order") or 0) == turn]
    before = [
        (instant(r.get("signedAt")), r.get("signedAt")) for r in signers if (r.get("order") or 0) < turn
    ]
    signed = [(moment, text) for moment, text in before if moment is not None]
    return now_up, max(signed)[1] if signed else envelope.get("sentAt")


def progress(envelope: dict[str, Any]) -> str:
    """One line for ops following a wait: who signed and when, who holds it up and since when, and for a
    decline, expiry or void who, when and why. Never a sign URL. Times are UTC.

    e.g. ``1 of 2 signed: Marie Dubois signed at 10:02; waiting for Ressources humaines <rh@example.com>
    (sequential, their turn since 10:02)``. Pure: the waits log it when it differs from the last one."""
    status = envelope.get("status", "?")
    day = envelope.get("updatedAt")
    signers = _signers(envelope)
    signed = [r for r in signers if r.get("status") == "SIGNED"]
    line = f"{len(signed)} of {len(signers)} signed"
    if signed:
        line += ": " + ", ".join(
            f"{r.get('name') or r.get('email')} signed at {at(r.get('signedAt'), day)}" for r in signed
        )
    pending = [r for r in signers if r.get("status", "PENDING") == "PENDING"]
    if status == "DECLINED":
        for r in signers:
            if r.get("status") == "DECLINED":
                reason = r.get("declineReason") or "no reason given"
                line += f"; declined by {who(r)} at {at(r.get('declinedAt') or day, day)}: {reason}"
    elif status == "EXPIRED":
        line += f"; expired at {at(envelope.get('expiresAt') or day, day)} unsigned by "
        line += ", ".join(who(r) for r in pending) or "nobody"
    elif status == "VOIDED":
        line += f"; voided by the sender at {at(day, day)}"
        if pending:
            line += f" before {', '.join(who(r) for r in pending)} signed"
    elif status == "COMPLETED":
        line += f"; completed at {at(envelope.get('completedAt') or day, day)}"
    elif status == "DRAFT":
        line += "; not sent yet"
    else:
        waiting, since = holding_up(envelope)
        if waiting:
            order = (
                "sequential, their turn" if envelope.get("signingOrder") == "SEQUENTIAL" else "parallel, sent"
            )
            line += f"; waiting for {', '.join(who(r) for r in waiting)} ({order} since {at(since, day)})"
            later = [r for r in pending if r not in waiting]
            if later:
                line += f", then {', '.join(who(r) for r in later)}"
        if status not in KNOWN_STATUSES:
            line += f" (status {status}, unknown to this provider)"
    return line


# What may be shown of a recipient to anyone who may read the DAG (XCom, asset events, the Signatures view,
# logs): never the sign URL, a bearer link.
PUBLIC_RECIPIENT_FIELDS = (
    "email",
    "name",
    "order",
    "role",
    "status",
    "signedAt",
    "declinedAt",
    "declineReason",
)
# The asset outcomes (``certyneo://{conn_id}/envelopes/{outcome}``) and the envelope status each stands for.
OUTCOMES = {"completed": "COMPLETED", "declined": "DECLINED"}


def recipients_of(envelope: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each recipient's :data:`PUBLIC_RECIPIENT_FIELDS` (None where the envelope has no value)."""
    return [{k: r.get(k) for k in PUBLIC_RECIPIENT_FIELDS} for r in envelope.get("recipients") or []]


def event_payload(envelope: Mapping[str, Any], event_id: str, source: str) -> dict[str, Any]:
    """What an asset event carries, from a webhook or the watcher alike: ids, subject, status and the
    recipients' public fields that have a value — never a sign URL."""
    recipients = [{k: v for k, v in r.items() if v is not None} for r in recipients_of(envelope)]
    return {
        "envelope_id": envelope.get("id"),
        "subject": envelope.get("subject"),
        "status": envelope.get("status"),
        "recipients": recipients,
        "completed_at": envelope.get("completedAt"),
        "updated_at": envelope.get("updatedAt"),
        "event_id": event_id,
        "source": source,
    }


def sign_urls(envelope: dict[str, Any]) -> list[dict[str, Any]]:
    """The signers' sign URLs: bearer links (whoever holds one can sign). Only for a DAG author who asked
    for them (``return_sign_urls=True``); never logged, rendered or shown."""
    return [
        {"email": r.get("email"), "name": r.get("name"), "order": r.get("order"), "signUrl": r.get("signUrl")}
        for r in envelope.get("recipients") or []
        if r.get("signUrl")
    ]
