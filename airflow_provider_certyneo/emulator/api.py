"""The public API, ``/api/v1``: the contract's 18 routes."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from airflow_provider_certyneo.emulator.errors import ApiError, validation
from airflow_provider_certyneo.emulator.models import (
    ENVELOPE_STATUSES,
    ENVIRONMENTS,
    MAX_UPLOAD_BYTES,
    Key,
    paginate,
    parse_rfc3339,
)
from airflow_provider_certyneo.emulator.openapi import DOCUMENT as OPENAPI_DOCUMENT
from airflow_provider_certyneo.emulator.runtime import Runtime

router = APIRouter(prefix="/api/v1", include_in_schema=False)


def runtime(request: Request) -> Runtime:
    value: Runtime = request.app.state.runtime
    return value


def caller(request: Request) -> Key:
    """The authenticated key, charged one token of its rate limit."""
    rt = runtime(request)
    key = rt.store.authenticate(request.headers.get("authorization"))
    rt.throttle(key.id)
    return key


async def json_body(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    if "json" not in content_type:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise validation(f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise validation("body must be a JSON object")
    return body


def page_args(request: Request) -> tuple[int, str | None]:
    raw = request.query_params.get("limit", "20")
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise validation(f"limit must be an integer from 1 to 100, not {raw!r}", {"field": "limit"})
    return limit, request.query_params.get("cursor")


def listing(items: list[Any], request: Request) -> JSONResponse:
    limit, cursor = page_args(request)
    page, next_cursor = paginate(items, limit, cursor)
    return JSONResponse({"data": [item.public() for item in page], "nextCursor": next_cursor})


@router.get("/openapi.json")
async def openapi_document() -> JSONResponse:
    return JSONResponse(OPENAPI_DOCUMENT)


# Documents --------------------------------------------------------------------------------------------


@router.post("/documents")
async def upload_document(request: Request) -> JSONResponse:
    key = caller(request)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", "upload the PDF as multipart/form-data, field 'file'")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
        raise ApiError(413, "payload_too_large", f"request is {declared} bytes; a document may be 25 MiB")
    try:
        form = await request.form(max_files=1, max_fields=10)
    except Exception as exc:
        raise validation(f"malformed multipart body: {exc}") from exc
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise validation("multipart field 'file' is required and must be a file", {"field": "file"})
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    document = runtime(request).store.add_document(key.environment, upload.filename or "document.pdf", data)
    return JSONResponse(document.public(), status_code=201)


@router.get("/documents")
async def list_documents(request: Request) -> JSONResponse:
    key = caller(request)
    store = runtime(request).store
    with store.lock:
        items = [d for d in store.documents.values() if d.environment == key.environment]
    return listing(items, request)


@router.get("/documents/{document_id}")
async def get_document(document_id: str, request: Request) -> JSONResponse:
    key = caller(request)
    return JSONResponse(runtime(request).store.get_document(key.environment, document_id).public())


@router.delete("/documents/{document_id}")
async def delete_document(document_id: str, request: Request) -> Response:
    key = caller(request)
    runtime(request).store.delete_document(key.environment, document_id)
    return Response(status_code=204)


# Envelopes --------------------------------------------------------------------------------------------


@router.get("/envelopes")
async def list_envelopes(request: Request) -> JSONResponse:
    key = caller(request)
    statuses = request.query_params.getlist("status")
    for status in statuses:
        if status not in ENVELOPE_STATUSES:
            raise validation(
                f"status {status!r} is not one of {', '.join(ENVELOPE_STATUSES)}", {"field": "status"}
            )
    since = request.query_params.get("updatedSince")
    try:
        updated_since = parse_rfc3339(since) if since is not None else None
    except ValueError as exc:
        raise validation(
            f"updatedSince {since!r} is not an RFC 3339 timestamp", {"field": "updatedSince"}
        ) from exc
    page_args(request)
    return listing(runtime(request).store.list_envelopes(key.environment, statuses, updated_since), request)


@router.post("/envelopes")
async def create_envelope(request: Request) -> JSONResponse:
    key = caller(request)
    body = await json_body(request)
    envelope = runtime(request).store.create_envelope(key.environment, body)
    return JSONResponse(envelope.public(), status_code=201)


@router.get("/envelopes/{envelope_id}")
async def get_envelope(envelope_id: str, request: Request) -> JSONResponse:
    key = caller(request)
    return JSONResponse(runtime(request).store.get_envelope(key.environment, envelope_id).public())


@router.patch("/envelopes/{envelope_id}")
async def update_envelope(envelope_id: str, request: Request) -> JSONResponse:
    key = caller(request)
    body = await json_body(request)
    envelope = runtime(request).store.update_envelope(key.environment, envelope_id, body)
    return JSONResponse(envelope.public())


@router.delete("/envelopes/{envelope_id}")
async def delete_envelope(envelope_id: str, request: Request) -> Response:
    key = caller(request)
    voided = runtime(request).store.delete_envelope(key.environment, envelope_id)
    if voided is None:
        return Response(status_code=204)
    return JSONResponse(voided.public())


@router.post("/envelopes/{envelope_id}/send")
async def send_envelope(envelope_id: str, request: Request) -> JSONResponse:
    key = caller(request)
    rt = runtime(request)
    envelope = rt.store.send_envelope(key.environment, envelope_id, str(request.base_url))
    rt.after_send(envelope.id)
    return JSONResponse(envelope.public())


def pdf_response(filename: str, data: bytes) -> Response:
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/envelopes/{envelope_id}/audit-trail")
async def audit_trail(envelope_id: str, request: Request) -> Response:
    key = caller(request)
    return pdf_response(*runtime(request).store.audit_trail(key.environment, envelope_id))


@router.get("/envelopes/{envelope_id}/signed-document")
async def signed_document(envelope_id: str, request: Request) -> Response:
    key = caller(request)
    return pdf_response(*runtime(request).store.signed_document(key.environment, envelope_id))


# Webhooks ---------------------------------------------------------------------------------------------


@router.get("/webhooks")
async def list_webhooks(request: Request) -> JSONResponse:
    key = caller(request)
    store = runtime(request).store
    with store.lock:
        items = [w for w in store.webhooks.values() if w.environment == key.environment]
    return listing(items, request)


@router.post("/webhooks")
async def create_webhook(request: Request) -> JSONResponse:
    key = caller(request)
    body = await json_body(request)
    webhook = runtime(request).store.add_webhook(key.environment, body.get("url"), body.get("events"))
    return JSONResponse({**webhook.public(), "secret": webhook.secret}, status_code=201)


@router.delete("/webhooks/{webhook_id}")
async def delete_webhook(webhook_id: str, request: Request) -> Response:
    key = caller(request)
    runtime(request).store.delete_webhook(key.environment, webhook_id)
    return Response(status_code=204)


# Keys -------------------------------------------------------------------------------------------------


@router.get("/keys")
async def list_keys(request: Request) -> JSONResponse:
    key = caller(request)
    return listing(runtime(request).store.list_keys(key.environment), request)


@router.post("/keys")
async def create_key(request: Request) -> JSONResponse:
    key = caller(request)
    body = await json_body(request)
    name, environment = body.get("name"), body.get("environment", key.environment)
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise validation("name must be 1 to 100 characters", {"field": "name"})
    if environment not in ENVIRONMENTS:
        raise validation("environment must be 'test' or 'live'", {"field": "environment"})
    if environment != key.environment:
        raise ApiError(403, "forbidden", f"a {key.environment} key cannot create {environment} keys")
    created = runtime(request).store.add_key(name, environment)
    return JSONResponse({**created.public(), "secret": created.secret}, status_code=201)


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request) -> Response:
    key = caller(request)
    runtime(request).store.revoke_key(key.environment, key_id)
    return Response(status_code=204)
