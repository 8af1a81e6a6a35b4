"""The webhook receiver served for real (uvicorn on a free port, over a socket) against this test session's
Airflow database, with a DAG scheduled on the completed-contracts asset so Airflow knows the asset."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import uvicorn

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.emulator.server import free_port
from tests.support.airflow_runs import load, register
from tests.support.polling import wait_until
from tests.webhooks.served import receiver_host

SECRET = "whsec_" + "s" * 32
OTHER_SECRET = "whsec_" + "o" * 32


@dataclass
class Receiver:
    base_url: str
    client: httpx.Client

    def url(self, conn_id: str = "certyneo_default") -> str:
        return f"{self.base_url}/certyneo/webhooks/{conn_id}"

    def post(self, body: bytes, signature: str | None, conn_id: str = "certyneo_default") -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Certyneo-Signature"] = signature
        return self.client.post(self.url(conn_id), content=body, headers=headers)


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery(kind: str = "envelope.completed", age: float = 0.0, envelope_id: str | None = None) -> bytes:
    created = datetime.now(timezone.utc) - timedelta(seconds=age)
    envelope = {
        "id": envelope_id or f"env_{uuid.uuid4().hex[:24]}",
        "subject": "Contrat de prestation",
        "status": "COMPLETED" if kind == "envelope.completed" else "DECLINED",
        "recipients": [
            {
                "email": "marie@example.com",
                "name": "Marie Dubois",
                "role": "SIGNER",
                "status": "SIGNED",
                "signUrl": "https://certyneo.com/sign/secret-bearer-token",
            }
        ],
    }
    event = {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "type": kind,
        "createdAt": created.isoformat().replace("+00:00", "Z"),
        "data": {"envelope": envelope},
    }
    return json.dumps(event).encode()


def inbox_size() -> int:
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    from airflow_provider_certyneo.plugins.claims import INBOX, ensure_claim_table

    with create_session() as session:
        ensure_claim_table(session.get_bind())
        return int(session.scalar(select(func.count()).select_from(INBOX)) or 0)


def asset_events(outcome: str = "completed") -> list[dict[str, Any]]:
    """The asset events' extras on the asset, once the receiver's drainer has emptied the inbox (what was
    recorded is then registered)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    wait_until(lambda: inbox_size() == 0, timeout=15, interval=0.02, what="the drainer to empty the inbox")
    uri = f"certyneo://certyneo_default/envelopes/{outcome}"
    with create_session() as session:
        query = (
            select(AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == uri)
        )
        return [dict(extra or {}) for extra in session.scalars(query)]


@pytest.fixture(scope="session")
def receiver_server(airflow_db: None) -> Iterator[str]:
    register(load("certyneo_archive_signed").dag)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(receiver_host(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=15, interval=0.02, what="the receiver to start")
    # a first request builds the plugin's app, which starts this process's drainer, as in an API server
    assert httpx.post(f"http://127.0.0.1:{port}/certyneo/webhooks/certyneo_default").status_code == 401
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def receiver(
    receiver_server: str, certyneo_emulator: CertyneoEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Receiver]:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CERTYNEO_DEFAULT", certyneo_emulator.connection_json(webhook_secret=SECRET)
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_CERTYNEO_OTHER", certyneo_emulator.connection_json(webhook_secret=OTHER_SECRET)
    )
    with httpx.Client(timeout=10) as client:
        yield Receiver(receiver_server, client)
