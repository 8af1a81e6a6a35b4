"""The OpenAPI 3.0 description of ``/api/v1``, written from the contract (not generated from the code),
so that property-based runs check the emulator against the contract rather than against itself."""

from __future__ import annotations

from typing import Any

TIMESTAMP: dict[str, Any] = {"type": "string", "format": "date-time"}
NULLABLE_TIMESTAMP: dict[str, Any] = {"type": "string", "format": "date-time", "nullable": True}
ENVELOPE_STATUS = ["DRAFT", "SENT", "COMPLETED", "DECLINED", "VOIDED", "EXPIRED"]
EVENTS = ["envelope.created", "envelope.completed", "envelope.declined"]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: list[str], properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties, **extra}


def json_content(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": "Validation error",
    "401": "Missing, malformed, unknown or revoked key",
    "403": "Forbidden",
    "404": "Not found",
    "409": "Invalid state for this operation",
    "413": "Payload too large",
    "415": "Unsupported media type",
    "422": "Validation error",
    "429": "Rate limited",
    "500": "Internal error",
    "503": "Service unavailable",
}


def responses(success: dict[str, Any]) -> dict[str, Any]:
    out = dict(success)
    for status, description in ERRORS.items():
        out[status] = json_content(ref("Error"), description)
    out["429"]["headers"] = {
        "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer", "minimum": 1}}
    }
    return out


def operation(operation_id: str, summary: str, success: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"operationId": operation_id, "summary": summary, "responses": responses(success), **extra}


def path_id(name: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}]


def list_params(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        },
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        *extra,
    ]


def page_of(name: str) -> dict[str, Any]:
    return obj(
        ["data", "nextCursor"],
        {"data": {"type": "array", "items": ref(name)}, "nextCursor": {"type": "string", "nullable": True}},
    )


def json_body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": ref(name)}}}


RECIPIENT_INPUT = obj(
    ["email", "name"],
    {
        "email": {"type": "string", "format": "email"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "role": {"type": "string", "enum": ["SIGNER", "CC"], "default": "SIGNER"},
        "order": {"type": "integer", "minimum": 1},
    },
)
ENVELOPE_FIELDS = {
    "subject": {"type": "string", "minLength": 1, "maxLength": 200},
    "message": {"type": "string", "maxLength": 5000, "nullable": True},
    "signingOrder": {"type": "string", "enum": ["PARALLEL", "SEQUENTIAL"], "default": "PARALLEL"},
    "documentIds": {"type": "array", "minItems": 1, "maxItems": 20, "items": {"type": "string"}},
    "recipients": {"type": "array", "minItems": 1, "maxItems": 50, "items": ref("RecipientInput")},
}
KEY_FIELDS = {
    "id": {"type": "string"},
    "name": {"type": "string"},
    "environment": {"type": "string", "enum": ["test", "live"]},
    "prefix": {"type": "string"},
    "createdAt": TIMESTAMP,
    "lastUsedAt": NULLABLE_TIMESTAMP,
    "revokedAt": NULLABLE_TIMESTAMP,
}
WEBHOOK_FIELDS = {
    "id": {"type": "string"},
    "url": {"type": "string"},
    "events": {"type": "array", "items": {"type": "string", "enum": EVENTS}},
    "createdAt": TIMESTAMP,
}
PDF = {
    "description": "PDF",
    "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
}
NO_CONTENT = {"description": "No content"}

SCHEMAS: dict[str, Any] = {
    "Error": obj(
        ["error"],
        {
            "error": obj(
                ["code", "message"],
                {
                    "code": {
                        "type": "string",
                        "enum": [
                            "validation_error",
                            "unauthorized",
                            "forbidden",
                            "not_found",
                            "invalid_state",
                            "payload_too_large",
                            "unsupported_media_type",
                            "rate_limited",
                            "internal_error",
                        ],
                    },
                    "message": {"type": "string"},
                    "details": {"type": "array", "nullable": True, "items": {}},
                },
            )
        },
    ),
    "Document": obj(
        ["id", "filename", "contentType", "size", "sha256", "pages", "createdAt"],
        {
            "id": {"type": "string"},
            "filename": {"type": "string"},
            "contentType": {"type": "string", "enum": ["application/pdf"]},
            "size": {"type": "integer", "minimum": 0},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "pages": {"type": "integer", "minimum": 0},
            "createdAt": TIMESTAMP,
        },
    ),
    "Recipient": obj(
        ["id", "email", "name", "role", "order", "status", "signUrl", "signedAt", "declineReason"],
        {
            "id": {"type": "string"},
            "email": {"type": "string"},
            "name": {"type": "string"},
            "role": {"type": "string"},
            "order": {"type": "integer"},
            "status": {"type": "string", "enum": ["PENDING", "SIGNED", "DECLINED"]},
            "signUrl": {"type": "string", "nullable": True},
            "signedAt": NULLABLE_TIMESTAMP,
            "declineReason": {"type": "string", "nullable": True},
        },
    ),
    "Envelope": obj(
        [
            "id",
            "subject",
            "message",
            "status",
            "signingOrder",
            "documentIds",
            "recipients",
            "createdAt",
            "updatedAt",
            "sentAt",
            "completedAt",
            "expiresAt",
        ],
        {
            "id": {"type": "string"},
            "subject": {"type": "string"},
            "message": {"type": "string", "nullable": True},
            "status": {"type": "string", "enum": ENVELOPE_STATUS},
            "signingOrder": {"type": "string", "enum": ["PARALLEL", "SEQUENTIAL"]},
            "documentIds": {"type": "array", "items": {"type": "string"}},
            "recipients": {"type": "array", "items": ref("Recipient")},
            "createdAt": TIMESTAMP,
            "updatedAt": TIMESTAMP,
            "sentAt": NULLABLE_TIMESTAMP,
            "completedAt": NULLABLE_TIMESTAMP,
            "expiresAt": NULLABLE_TIMESTAMP,
        },
    ),
    "RecipientInput": RECIPIENT_INPUT,
    "EnvelopeCreate": obj(["subject", "documentIds", "recipients"], ENVELOPE_FIELDS),
    "EnvelopeUpdate": obj([], ENVELOPE_FIELDS),
    "Webhook": obj(list(WEBHOOK_FIELDS), WEBHOOK_FIELDS),
    "WebhookCreated": obj([*WEBHOOK_FIELDS, "secret"], {**WEBHOOK_FIELDS, "secret": {"type": "string"}}),
    "WebhookCreate": obj(
        ["url", "events"],
        {
            "url": {"type": "string", "format": "uri"},
            "events": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": EVENTS}},
        },
    ),
    "Key": obj(list(KEY_FIELDS), KEY_FIELDS),
    "KeyCreated": obj([*KEY_FIELDS, "secret"], {**KEY_FIELDS, "secret": {"type": "string"}}),
    "KeyCreate": obj(
        ["name"],
        {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "environment": {"type": "string", "enum": ["test", "live"]},
        },
    ),
    "DocumentPage": page_of("Document"),
    "EnvelopePage": page_of("Envelope"),
    "WebhookPage": page_of("Webhook"),
    "KeyPage": page_of("Key"),
}

PATHS: dict[str, Any] = {
    "/documents": {
        "post": operation(
            "uploadDocument",
            "Upload a PDF",
            {"201": json_content(ref("Document"), "Created")},
            requestBody={
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": obj(["file"], {"file": {"type": "string", "format": "binary"}})
                    }
                },
            },
        ),
        "get": operation(
            "listDocuments",
            "List documents",
            {"200": json_content(ref("DocumentPage"))},
            parameters=list_params(),
        ),
    },
    "/documents/{id}": {
        "parameters": path_id("id"),
        "get": operation("getDocument", "Document metadata", {"200": json_content(ref("Document"))}),
        "delete": operation("deleteDocument", "Delete a document", {"204": NO_CONTENT}),
    },
    "/envelopes": {
        "get": operation(
            "listEnvelopes",
            "List envelopes",
            {"200": json_content(ref("EnvelopePage"))},
            parameters=list_params(
                {
                    "name": "status",
                    "in": "query",
                    "style": "form",
                    "explode": True,
                    "schema": {"type": "array", "items": {"type": "string", "enum": ENVELOPE_STATUS}},
                },
                {"name": "updatedSince", "in": "query", "schema": TIMESTAMP},
            ),
        ),
        "post": operation(
            "createEnvelope",
            "Create an envelope (DRAFT)",
            {"201": json_content(ref("Envelope"), "Created")},
            requestBody=json_body("EnvelopeCreate"),
        ),
    },
    "/envelopes/{id}": {
        "parameters": path_id("id"),
        "get": operation("getEnvelope", "Envelope state", {"200": json_content(ref("Envelope"))}),
        "patch": operation(
            "updateEnvelope",
            "Update a DRAFT envelope",
            {"200": json_content(ref("Envelope"))},
            requestBody=json_body("EnvelopeUpdate"),
        ),
        "delete": operation(
            "deleteEnvelope",
            "Void a sent envelope / delete a DRAFT",
            {"200": json_content(ref("Envelope"), "Voided"), "204": NO_CONTENT},
        ),
    },
    "/envelopes/{id}/send": {
        "parameters": path_id("id"),
        "post": operation("sendEnvelope", "Dispatch a DRAFT", {"200": json_content(ref("Envelope"))}),
    },
    "/envelopes/{id}/audit-trail": {
        "parameters": path_id("id"),
        "get": operation("downloadAuditTrail", "eIDAS audit-trail PDF", {"200": PDF}),
    },
    "/envelopes/{id}/signed-document": {
        "parameters": path_id("id"),
        "get": operation("downloadSignedDocument", "Signed PDF (COMPLETED)", {"200": PDF}),
    },
    "/webhooks": {
        "get": operation(
            "listWebhooks",
            "List webhooks",
            {"200": json_content(ref("WebhookPage"))},
            parameters=list_params(),
        ),
        "post": operation(
            "createWebhook",
            "Register a webhook",
            {"201": json_content(ref("WebhookCreated"))},
            requestBody=json_body("WebhookCreate"),
        ),
    },
    "/webhooks/{id}": {
        "parameters": path_id("id"),
        "delete": operation("deleteWebhook", "Unregister", {"204": NO_CONTENT}),
    },
    "/keys": {
        "get": operation(
            "listKeys", "List API keys", {"200": json_content(ref("KeyPage"))}, parameters=list_params()
        ),
        "post": operation(
            "createKey",
            "Create an API key",
            {"201": json_content(ref("KeyCreated"))},
            requestBody=json_body("KeyCreate"),
        ),
    },
    "/keys/{id}": {
        "parameters": path_id("id"),
        "delete": operation("revokeKey", "Revoke a key", {"204": NO_CONTENT}),
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Certyneo public API",
        "version": "1",
        "description": "The Certyneo API v1 as served by the airflow-provider-certyneo emulator.",
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearerAuth": []}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
    },
}

ROUTE_COUNT = sum(1 for item in PATHS.values() for method in item if method != "parameters")
