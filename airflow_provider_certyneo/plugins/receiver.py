"""``POST /certyneo/webhooks/{conn_id}``: Certyneo's webhook deliveries, checked, recorded, then registered
as asset events on ``certyneo://{conn_id}/envelopes/completed`` or ``…/declined``.

Plugin routes get no Airflow authentication, so the HMAC signature is the only gate and everything else is
hostile input: the body is capped before it is read whole, the signature is checked (constant time) with
the ``webhook_secret`` of the connection named in the path before anything in the body is trusted, stale
events are refused, and an event id already recorded is not recorded again (a claim row keyed by it:
:mod:`.inbox`). A delivery is answered once it is recorded in the metadata database; this worker's drainer
(:mod:`.drainer`) registers it as an asset event a moment later. Answers: 401 for anything not signed by
that connection's secret (unknown connection and missing secret included, so nothing tells a stranger which
connections exist), 400 for a signed body that is not an event (or whose id is over 250 characters), 413
for an oversized body, 200 otherwise (``recorded``, ``duplicate``, ``ignored`` or ``no_consumer``). Nothing
gets a 5xx from bad input.
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
from airflow_provider_certyneo.plugins.claims import EVENT_ID_MAX
from airflow_provider_certyneo.plugins.inbox import record_together

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024
TOLERANCE_SECONDS = 300.0
# A connection's secret is read once per this many seconds, not per delivery (from a database-stored
# connection that is a query; from any backend, a decryption). A delivery that does not verify with the
# remembered secret is checked again with a fresh read, so a new secret works at once; a removed one is
# still accepted for at most this long.
SECRET_CACHE_SECONDS = 30.0
_secrets: dict[str, tuple[str, float]] = {}  # connection id -> (its webhook secret, when read)


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


async def checked_event(conn_id: str, raw: bytes, signature: str | None) -> dict[str, Any]:
    """:func:`check_event` with the connection's secret, remembered for SECRET_CACHE_SECONDS (only secrets
    that exist are remembered: a stranger's made-up connection ids cost a look-up each, and fill nothing).
    Checking is quick (an HMAC, a JSON parse) and runs in the event loop; reading a secret may wait on the
    database and runs in a thread."""
    now = time.monotonic()
    remembered = _secrets.get(conn_id)
    if remembered is not None and now - remembered[1] < SECRET_CACHE_SECONDS:
        try:
            return check_event(raw, signature, remembered[0], TOLERANCE_SECONDS, time.time())
        except MalformedEventError:
            raise
        except CertyneoWebhookError:
            pass  # perhaps signed with a new secret: read it again
    secret = await run_in_threadpool(webhook_secret, conn_id)
    if secret:
        _secrets[conn_id] = (secret, now)
    else:
        _secrets.pop(conn_id, None)
    return check_event(raw, signature, secret, TOLERANCE_SECONDS, time.time())


def refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def handle_delivery(conn_id: str, raw: bytes, signature: str | None, started: float) -> JSONResponse:
    """The answer to a delivery whose body has been read: checked with the connection's secret, then
    recorded."""
    try:
        event = await checked_event(conn_id, raw, signature)
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
    status = await record_together(conn_id, outcome, payload)
    # a recorded event is logged again, at info, when the drainer registers it as an asset event
    log.log(
        logging.DEBUG if status == "recorded" else logging.INFO,
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
    from airflow_provider_certyneo.plugins import drainer

    drainer.start()  # built on this worker's first request to the plugin: registers what deliveries record
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
        return await handle_delivery(conn_id, raw, request.headers.get(SIGNATURE_HEADER), started)

    return app
