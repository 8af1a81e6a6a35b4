"""What lives outside ``/api/v1``: the signer's pages (``/sign/...``) and the unauthenticated control API
(``/_emulator/...``) that tests and demos use to sign, decline, expire, inject faults and read counters."""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from airflow_provider_certyneo.emulator.config import FaultRule
from airflow_provider_certyneo.emulator.errors import ApiError, validation
from airflow_provider_certyneo.emulator.runtime import Runtime

control = APIRouter(prefix="/_emulator", include_in_schema=False)
signing = APIRouter(prefix="/sign", include_in_schema=False)


def runtime(request: Request) -> Runtime:
    value: Runtime = request.app.state.runtime
    return value


async def optional_json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise validation(f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise validation("body must be a JSON object")
    return body


@control.get("/health")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@control.get("/trust-root")
async def trust_root(request: Request) -> Response:
    """The test root CA (PEM) every seal of this emulator chains to: what tests and users trust. The real
    service serves no trust roots (the contract): its clients are given them."""
    pem = runtime(request).store.trust_root_pem()
    return Response(pem, media_type="application/x-pem-file")


@control.get("/counters")
async def counters(request: Request) -> JSONResponse:
    return JSONResponse(runtime(request).counters())


@control.get("/requests")
async def request_log(request: Request, since: int = 0) -> JSONResponse:
    """The API requests after sequence number ``since``, oldest first: the server's own record of when each
    arrived (``at``, ``answeredAt``: seconds on the server's monotonic clock), how it was answered
    (``status``, ``retryAfter``) and which injected fault it met (``fault``)."""
    return JSONResponse({"data": runtime(request).requests_since(since)})


@control.post("/reset")
async def reset(request: Request) -> JSONResponse:
    runtime(request).reset()
    return JSONResponse({"status": "reset"})


@control.get("/config")
async def get_config(request: Request) -> JSONResponse:
    return JSONResponse(runtime(request).config.to_json())


@control.patch("/config")
async def set_config(request: Request) -> JSONResponse:
    rt = runtime(request)
    try:
        rt.apply_config(await optional_json(request))
    except (ValueError, TypeError) as exc:
        raise validation(str(exc)) from exc
    return JSONResponse(rt.config.to_json())


@control.put("/faults")
async def set_faults(request: Request) -> JSONResponse:
    rt = runtime(request)
    body = await optional_json(request)
    try:
        rules = [FaultRule.from_json(raw) for raw in body.get("rules", [])]
    except (ValueError, TypeError) as exc:
        raise validation(str(exc)) from exc
    rt.config.faults = rules
    if body.get("seed") is not None:
        rt.rng.seed(body["seed"])
    return JSONResponse({"rules": [rule.to_json() for rule in rules]})


@control.get("/faults")
async def get_faults(request: Request) -> JSONResponse:
    return JSONResponse({"rules": [rule.to_json() for rule in runtime(request).config.faults]})


@control.post("/keys")
async def add_key(request: Request) -> JSONResponse:
    body = await optional_json(request)
    environment = body.get("environment", "test")
    try:
        key = runtime(request).store.add_key(body.get("name", "control"), environment, body.get("secret"))
    except ValueError as exc:
        raise validation(str(exc)) from exc
    return JSONResponse({**key.public(), "secret": key.secret}, status_code=201)


@control.get("/envelopes/{envelope_id}")
async def peek_envelope(envelope_id: str, request: Request) -> JSONResponse:
    store = runtime(request).store
    with store.lock:
        envelope = store.envelopes.get(envelope_id)
        if envelope is None:
            raise ApiError(404, "not_found", f"envelope {envelope_id!r} does not exist")
        return JSONResponse(
            {**envelope.public(), "environment": envelope.environment, "sends": store.sends[envelope_id]}
        )


@control.post("/envelopes/{envelope_id}/aliases")
async def add_alias(envelope_id: str, request: Request) -> JSONResponse:
    """Make the envelope answer ``/api/v1/envelopes/{alias}/...`` too (``{"alias": "any text"}``)."""
    body = await optional_json(request)
    alias = body.get("alias")
    rt = runtime(request)
    if not isinstance(alias, str) or not alias:
        raise validation("alias must be a non-empty string")
    with rt.store.lock:
        if envelope_id not in rt.store.envelopes:
            raise ApiError(404, "not_found", f"envelope {envelope_id!r} does not exist")
    rt.aliases[alias] = envelope_id
    return JSONResponse({"id": envelope_id, "alias": alias}, status_code=201)


@control.post("/envelopes/{envelope_id}/sign")
async def sign(envelope_id: str, request: Request) -> JSONResponse:
    body = await optional_json(request)
    envelope = runtime(request).store.sign_next(envelope_id, body.get("email"))
    return JSONResponse(envelope.public())


@control.post("/envelopes/{envelope_id}/decline")
async def decline(envelope_id: str, request: Request) -> JSONResponse:
    body = await optional_json(request)
    envelope = runtime(request).store.decline_next(envelope_id, body.get("email"), body.get("reason"))
    return JSONResponse(envelope.public())


@control.post("/envelopes/{envelope_id}/expire")
async def expire(envelope_id: str, request: Request) -> JSONResponse:
    return JSONResponse(runtime(request).store.expire(envelope_id).public())


@control.get("/webhook-deliveries")
async def deliveries(request: Request) -> JSONResponse:
    rt = runtime(request)
    with rt.counter_lock:
        return JSONResponse({"data": [dict(d) for d in rt.deliveries]})


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Certyneo - {title}</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:3em auto}}
button{{font-size:1.1em;margin:.3em}}</style>
</head><body><h1>{title}</h1>{body}</body></html>"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=html.escape(title), body=body), status_code=status)


@signing.get("/{token}")
async def sign_page(token: str, request: Request) -> HTMLResponse:
    try:
        envelope, recipient = runtime(request).store.recipient_by_token(token)
    except ApiError as exc:
        return page("Invalid link", f"<p>{html.escape(exc.message)}</p>", exc.status)
    documents = "".join(f"<li>{html.escape(d)}</li>" for d in envelope.document_ids)
    head = (
        f"<p>{html.escape(recipient.name)} &lt;{html.escape(recipient.email)}&gt;, you are asked to sign "
        f"<strong>{html.escape(envelope.subject)}</strong>.</p><ul>{documents}</ul>"
        f"<p>Envelope status: {envelope.status}; your status: {recipient.status}.</p>"
    )
    can_act = envelope.status == "SENT" and recipient.status == "PENDING"
    if can_act and envelope.signing_order == "SEQUENTIAL" and recipient.order != envelope.current_order():
        return page("Not yet", head + "<p>Earlier signers have not signed yet.</p>")
    if not can_act:
        return page(envelope.subject, head)
    forms = (
        f'<form method="post" action="/sign/{token}/sign"><button name="sign" type="submit">Sign</button>'
        f'</form><form method="post" action="/sign/{token}/decline"><input name="reason" '
        f'placeholder="Reason"><button name="decline" type="submit">Decline</button></form>'
    )
    return page(envelope.subject, head + forms)


@signing.post("/{token}/sign")
async def sign_from_page(token: str, request: Request) -> HTMLResponse:
    store = runtime(request).store
    try:
        envelope, recipient = store.recipient_by_token(token)
        store.sign(envelope, recipient)
    except ApiError as exc:
        return page("Cannot sign", f"<p>{html.escape(exc.message)}</p>", exc.status)
    return page(
        "Signed", f"<p>Thank you, {html.escape(recipient.name)}. Envelope status: {envelope.status}.</p>"
    )


@signing.post("/{token}/decline")
async def decline_from_page(token: str, request: Request) -> HTMLResponse:
    store = runtime(request).store
    form = await request.form()
    reason = form.get("reason")
    try:
        envelope, recipient = store.recipient_by_token(token)
        store.decline(envelope, recipient, reason if isinstance(reason, str) else None)
    except ApiError as exc:
        return page("Cannot decline", f"<p>{html.escape(exc.message)}</p>", exc.status)
    return page("Declined", f"<p>You declined. Envelope status: {envelope.status}.</p>")
