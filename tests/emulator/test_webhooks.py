"""Webhook registration and signed delivery, with retries, to a real receiver on this machine."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from tests.support.polling import wait_until


class Receiver:
    """A tiny HTTP server recording deliveries; answers ``fail_first`` times with 500 first."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = 500 if len(receiver.received) <= receiver.fail_first else 204
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10) -> None:
        wait_until(
            lambda: len(self.received) >= count,
            timeout=timeout,
            interval=0.02,
            what=f"{count} deliveries",
            detail=lambda: f"only {len(self.received)} deliveries",
        )


def until_delivered(emulator: CertyneoEmulator, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """The emulator's delivery log once ``count`` deliveries have ended (a receiver has the request before
    the emulator has its answer)."""
    last: list[dict[str, Any]] = []

    def ended() -> list[dict[str, Any]]:
        last[:] = emulator.control.webhook_deliveries()
        return list(last) if sum(1 for d in last if d["delivered"]) >= count else []

    delivered: list[dict[str, Any]] = wait_until(
        ended, timeout=timeout, interval=0.02, what=f"{count} ended deliveries", detail=lambda: last
    )
    return delivered


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def test_register_list_delete(api: httpx.Client, receiver: Receiver) -> None:
    created = api.post("/webhooks", json={"url": receiver.url, "events": ["envelope.completed"]})
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_")
    listed = api.get("/webhooks").json()["data"]
    assert [w["id"] for w in listed] == [body["id"]]
    assert "secret" not in listed[0]
    assert api.delete(f"/webhooks/{body['id']}").status_code == 204
    assert api.get("/webhooks").json()["data"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://x", "events": ["envelope.completed"]},
        {"url": "https://x.example", "events": []},
        {"url": "https://x.example", "events": ["envelope.sent"]},
    ],
)
def test_registration_rules(api: httpx.Client, body: dict[str, Any]) -> None:
    assert api.post("/webhooks", json=body).status_code == 400


def test_deliveries_are_signed_with_the_secret(
    certyneo_emulator: CertyneoEmulator, api: httpx.Client, receiver: Receiver, draft: Any
) -> None:
    secret = api.post(
        "/webhooks",
        json={"url": receiver.url, "events": ["envelope.created", "envelope.completed", "envelope.declined"]},
    ).json()["secret"]
    signed = draft()
    api.post(f"/envelopes/{signed['id']}/send")
    certyneo_emulator.control.sign(signed["id"])
    declined = draft()
    api.post(f"/envelopes/{declined['id']}/send")
    certyneo_emulator.control.decline(declined["id"], "No")
    receiver.wait_for(4)
    types = []
    for headers, raw in receiver.received:
        expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        assert headers["x-certyneo-signature"] == f"sha256={expected}"
        event = json.loads(raw)
        assert headers["x-certyneo-event"] == event["type"]
        assert headers["x-certyneo-delivery"] == event["id"]
        assert event["id"].startswith("evt_")
        assert event["data"]["envelope"]["id"] in (signed["id"], declined["id"])
        types.append(event["type"])
    assert sorted(types) == sorted(["envelope.created"] * 2 + ["envelope.completed", "envelope.declined"])


def test_only_subscribed_events_and_environment(
    certyneo_emulator: CertyneoEmulator,
    api: httpx.Client,
    live_api: httpx.Client,
    receiver: Receiver,
    draft: Any,
) -> None:
    """A draft made with the test key reaches neither the live environment's webhook nor a test webhook for
    another event; a test webhook for this event, registered last, shows the deliveries have been made."""
    live_api.post("/webhooks", json={"url": receiver.url, "events": ["envelope.created"]})
    api.post("/webhooks", json={"url": receiver.url, "events": ["envelope.completed"]})
    sentinel = Receiver()
    try:
        api.post("/webhooks", json={"url": sentinel.url, "events": ["envelope.created"]})
        draft()
        sentinel.wait_for(1)
        until_delivered(certyneo_emulator, 1)
    finally:
        sentinel.server.shutdown()
    assert receiver.received == []


def test_failed_deliveries_are_retried(
    certyneo_emulator: CertyneoEmulator, api: httpx.Client, draft: Any
) -> None:
    flaky = Receiver(fail_first=2)
    try:
        certyneo_emulator.control.configure(webhookBackoff=0.05)
        api.post("/webhooks", json={"url": flaky.url, "events": ["envelope.created"]})
        draft()
        flaky.wait_for(3)
        ids = {headers["x-certyneo-delivery"] for headers, _ in flaky.received}
        assert len(ids) == 1
        deliveries = until_delivered(certyneo_emulator, 1)
        assert deliveries[0]["attempts"] == [500, 500, 204]
        assert deliveries[0]["delivered"]
    finally:
        flaky.server.shutdown()
