"""What an envelope's status means for a task waiting on it: done, still waiting, or never going to happen.

Pure functions, shared by the trigger, the sensor and the send operator's synchronous wait.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from airflow_provider_certyneo.types import KNOWN_STATUSES, TERMINAL_STATUSES

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


def sign_urls(envelope: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"email": r.get("email"), "name": r.get("name"), "order": r.get("order"), "signUrl": r.get("signUrl")}
        for r in envelope.get("recipients") or []
        if r.get("signUrl")
    ]
