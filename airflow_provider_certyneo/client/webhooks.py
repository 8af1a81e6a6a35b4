"""Verifying Certyneo webhook deliveries: HMAC-SHA256 of the raw body, event age, replayed event ids."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from typing import Any

from airflow_provider_certyneo.client.timestamps import parse_rfc3339
from airflow_provider_certyneo.exceptions import CertyneoWebhookError

SIGNATURE_HEADER = "X-Certyneo-Signature"
PREFIX = "sha256="
# The events a webhook can subscribe to (the contract's list), and the two that end a contract, with the
# asset outcome each becomes (``certyneo://{conn_id}/envelopes/{outcome}``).
EVENTS = ("envelope.created", "envelope.completed", "envelope.declined")
OUTCOME_OF_EVENT = {"envelope.completed": "completed", "envelope.declined": "declined"}


def verify_webhook_signature(raw_body: bytes, signature_header: str | None, secret: str) -> None:
    """Raise :class:`CertyneoWebhookError` unless ``signature_header`` is ``sha256=<hex HMAC of raw_body>``.

    Pass the body exactly as received (bytes, before any JSON parsing). The comparison takes constant time.
    """
    if not secret:
        raise CertyneoWebhookError(
            "no webhook secret configured: use the whsec_… secret shown at registration"
        )
    if not signature_header:
        raise CertyneoWebhookError(f"missing {SIGNATURE_HEADER} header: the delivery is not signed")
    scheme, _, received = signature_header.strip().partition("=")
    if f"{scheme}=" != PREFIX or not received:
        raise CertyneoWebhookError(f"{SIGNATURE_HEADER} must look like 'sha256=<hex>', got scheme {scheme!r}")
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, received.lower()):
        raise CertyneoWebhookError("webhook signature does not match the body: reject this delivery")


class MalformedEventError(CertyneoWebhookError):
    """Signed with the secret, but not a Certyneo event (HTTP 400 rather than 401)."""


def check_event(
    raw_body: bytes, signature_header: str | None, secret: str, tolerance: float, now: float
) -> dict[str, Any]:
    """The event of a delivery signed with ``secret`` and no older (nor newer) than ``tolerance`` seconds.

    Raises :class:`CertyneoWebhookError` for a forged, unsigned or stale delivery, and its subclass
    :class:`MalformedEventError` for a signed body that is not an event."""
    verify_webhook_signature(raw_body, signature_header, secret)
    try:
        event = json.loads(raw_body)
        event_id = event["id"]
        created = parse_rfc3339(str(event["createdAt"]), "createdAt")
        if not isinstance(event_id, str) or not isinstance(event.get("type"), str):
            raise TypeError("id and type must be strings")
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedEventError(f"signed body is not a Certyneo event: {exc}") from exc
    age = now - created.timestamp()
    if age > tolerance:
        raise CertyneoWebhookError(
            f"event {event_id} is {age:.0f} s old (limit {tolerance:.0f} s): possible replay"
        )
    if age < -tolerance:
        raise CertyneoWebhookError(f"event {event_id} is dated {-age:.0f} s in the future: check clocks")
    result: dict[str, Any] = event
    return result


class WebhookVerifier:
    """Checks signature, age and uniqueness of each delivery, and returns the parsed event.

    ``tolerance``: how old (seconds) an event may be. Event ids seen within the tolerance window are
    remembered (bounded by ``max_remembered``) so a replayed delivery is refused.
    """

    def __init__(self, secret: str, tolerance: float = 300.0, max_remembered: int = 100_000) -> None:
        self._secret = secret
        self.tolerance = tolerance
        self.max_remembered = max_remembered
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"WebhookVerifier(tolerance={self.tolerance})"

    def verify(
        self, raw_body: bytes, signature_header: str | None, now: float | None = None
    ) -> dict[str, Any]:
        now = time.time() if now is None else now
        event = check_event(raw_body, signature_header, self._secret, self.tolerance, now)
        event_id = event["id"]
        with self._lock:
            while self._seen and (
                len(self._seen) >= self.max_remembered
                or next(iter(self._seen.values())) < now - 2 * self.tolerance
            ):
                self._seen.popitem(last=False)
            if event_id in self._seen:
                raise CertyneoWebhookError(f"event {event_id} was already received: duplicate or replay")
            self._seen[event_id] = now
        result: dict[str, Any] = event
        return result
