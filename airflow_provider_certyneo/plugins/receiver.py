"""``POST /certyneo/webhooks/{conn_id}``: Certyneo's webhook deliveries, checked, then recorded as asset
events on ``certyneo://{conn_id}/envelopes/completed`` or ``…/declined``.

Plugin routes get no Airflow authentication, so the HMAC signature is the only gate and everything else is
hostile input: the body is capped before it is read whole, the signature is checked (constant time) with
the ``webhook_secret`` of the connection named in the path before anything in the body is trusted, stale
events are refused, and an event id already recorded is not recorded again (a claim row keyed by it:
:mod:`.asset_events`). Answers: 401 for anything not signed by that connection's secret (unknown connection
and missing secret included, so nothing tells a stranger which connections exist), 400 for a signed body
that is not an event (or whose id is over 250 characters), 413 for an oversized body, 200 otherwise
(``recorded``, ``duplicate``, ``ignored`` or ``no_consumer``). Nothing gets a 5xx from bad input.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from airflow_provider_certyneo.client.outcomes import event_payload
from airflow_provider_certyneo.client.webhooks import (
    OUTCOME_OF_EVENT,
    SIGNATURE_HEADER,
    MalformedEventError,
    check_event,
)
from airflow_provider_certyneo.exceptions import CertyneoWebhookError
from airflow_provider_certyneo.plugins.asset_events import record_together
from airflow_provider_certyneo.plugins.claims import EVENT_ID_MAX

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024
TOLERANCE_SECONDS = 300.0


class BodyTooLarge(Exception):
    pass


async def capped_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def webhook_secret(conn_id: str) -> str:
    """The connection's ``webhook_secret`` extra, or "" (no such connection, or no secret in it)."""
    from airflow.models.connection import Connection

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except Exception:  # noqa: BLE001 - any failure to read it means: cannot verify, refuse
        return ""
    secret = (conn.extra_dejson or {}).get("webhook_secret") or ""
    return secret if isinstance(secret, str) else ""


def refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def handle_delivery(conn_id: str, raw: bytes, signature: str | None, started: float) -> JSONResponse:
    """The answer to a delivery whose body has been read: checked with the connection's secret, then
    recorded (blocking: run in a worker thread)."""
    secret = webhook_secret(conn_id)
    try:
        event = check_event(raw, signature, secret, TOLERANCE_SECONDS, time.time())
    except MalformedEventError as exc:
        return refuse(400, str(exc))
    except CertyneoWebhookError as exc:
        log.warning("Certyneo webhook for %r refused: %s", conn_id, exc)
        return refuse(401, "the delivery is not signed with this connection's webhook secret, or is stale")
    if not 0 < len(event["id"]) <= EVENT_ID_MAX:
        return refuse(400, f"signed event's id must be 1 to {EVENT_ID_MAX} characters")
    outcome = OUTCOME_OF_EVENT.get(event["type"])
    if outcome is None:
        return JSONResponse({"status": "ignored", "event_id": event["id"]})
    envelope = (event.get("data") or {}).get("envelope") if isinstance(event.get("data"), dict) else None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("id"), str):
        return refuse(400, "signed event has no data.envelope")
    payload = event_payload(envelope, event["id"], "webhook")
    status = record_together(conn_id, outcome, payload)
    log.info(
        "Certyneo webhook %s (%s, envelope %s) for %r: %s in %.0f ms",
        event["id"],
        event["type"],
        envelope["id"],
        conn_id,
        status,
        (time.monotonic() - started) * 1000,
    )
    body: dict[str, Any] = {"status": status, "event_id": event["id"]}
    return JSONResponse(body)


def create_app() -> FastAPI:
    app = FastAPI(title="Certyneo webhooks", docs_url=None, redoc_url=None, openapi_url=None)
    from airflow_provider_certyneo.plugins.pages import router

    app.include_router(router())  # the Signatures view (Airflow's auth on each route)

    @app.post("/webhooks/{conn_id}")
    async def receive(conn_id: str, request: Request) -> JSONResponse:
        started = time.monotonic()
        try:
            raw = await capped_body(request)
        except BodyTooLarge:
            return refuse(413, f"body over {MAX_BODY_BYTES} bytes")
        # one trip to a worker thread: the secret's look-up and the recording both wait on the database
        signature = request.headers.get(SIGNATURE_HEADER)
        return await run_in_threadpool(handle_delivery, conn_id, raw, signature, started)

    return app
