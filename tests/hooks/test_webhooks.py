"""Verifying deliveries: a real emulator delivery passes; every tampering is refused with a reason."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from airflow_provider_certyneo.client.webhooks import WebhookVerifier, verify_webhook_signature
from airflow_provider_certyneo.exceptions import CertyneoWebhookError
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook
from tests.emulator.test_webhooks import Receiver

SECRET = "whsec_" + "s" * 32


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def event(age: float = 0.0, event_id: str = "evt_1") -> bytes:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - age))
    return json.dumps(
        {
            "id": event_id,
            "type": "envelope.completed",
            "createdAt": created,
            "data": {"envelope": {"id": "env_1"}},
        }
    ).encode()


def test_real_delivery_verifies(hook: CertyneoHook, pdf_file: Any) -> None:
    receiver = Receiver()
    try:
        secret = hook.create_webhook(receiver.url, ["envelope.created"])["secret"]
        hook.create_envelope(
            "S", [hook.upload_document(pdf_file)["id"]], [{"email": "a@example.com", "name": "A"}]
        )
        receiver.wait_for(1)
        headers, raw = receiver.received[0]
        verified = WebhookVerifier(secret).verify(raw, headers["x-certyneo-signature"])
        assert verified["type"] == "envelope.created"
    finally:
        receiver.server.shutdown()


@pytest.mark.parametrize(
    ("header", "body", "fragment"),
    [
        (None, event(), "missing"),
        ("", event(), "missing"),
        ("sha1=" + "0" * 40, event(), "must look like 'sha256=<hex>'"),
        ("sha256=", event(), "must look like"),
        (sign(event(), "whsec_other"), event(), "does not match"),
        (sign(event()), event() + b" ", "does not match"),
    ],
    ids=["no header", "empty", "sha1", "no digest", "another secret", "body changed"],
)
def test_signature_failures(header: str | None, body: bytes, fragment: str) -> None:
    with pytest.raises(CertyneoWebhookError, match=fragment):
        verify_webhook_signature(body, header, SECRET)


def test_one_flipped_byte_is_refused() -> None:
    body = event()
    header = sign(body)
    for index in range(len(body)):
        tampered = body[:index] + bytes([body[index] ^ 1]) + body[index + 1 :]
        with pytest.raises(CertyneoWebhookError):
            verify_webhook_signature(tampered, header, SECRET)


def test_stale_and_replayed_events_are_refused() -> None:
    verifier = WebhookVerifier(SECRET, tolerance=300)
    stale = event(age=301)
    with pytest.raises(CertyneoWebhookError, match="old"):
        verifier.verify(stale, sign(stale))
    fresh = event(event_id="evt_2")
    assert verifier.verify(fresh, sign(fresh))["id"] == "evt_2"
    with pytest.raises(CertyneoWebhookError, match="already received"):
        verifier.verify(fresh, sign(fresh))
    assert SECRET not in repr(verifier)


def test_event_names_have_one_home() -> None:
    """The CLI offers the contract's events and by default subscribes to those the receiver turns into asset
    events; the emulator (which imports nothing of the provider) serves the same list."""
    from airflow_provider_certyneo.cli.webhooks import parser
    from airflow_provider_certyneo.client.webhooks import EVENTS, OUTCOME_OF_EVENT
    from airflow_provider_certyneo.emulator.models import WEBHOOK_EVENTS

    assert set(OUTCOME_OF_EVENT) < set(EVENTS)
    assert WEBHOOK_EVENTS == EVENTS
    assert parser().parse_args(["register", "--url", "https://a.example"]).events == list(OUTCOME_OF_EVENT)
    with pytest.raises(SystemExit):
        parser().parse_args(["register", "--url", "https://a.example", "--events", "envelope.signed"])
