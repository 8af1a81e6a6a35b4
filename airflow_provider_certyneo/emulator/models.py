"""The emulator's objects (keys, documents, envelopes and their recipients, webhooks), their public JSON
form, the helpers that name and date them, and list pagination."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from airflow_provider_certyneo.emulator.errors import validation

ENVIRONMENTS = ("test", "live")
ENVELOPE_STATUSES = ("DRAFT", "SENT", "COMPLETED", "DECLINED", "VOIDED", "EXPIRED")
TERMINAL = frozenset({"COMPLETED", "DECLINED", "VOIDED", "EXPIRED"})
ROLES = ("SIGNER", "CC")
WEBHOOK_EVENTS = ("envelope.created", "envelope.completed", "envelope.declined")
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
KEY_PATTERN = re.compile(r"^sk_(test|live)_[A-Za-z0-9_-]{24,}$")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    if not re.match(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", text):
        raise ValueError(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment.astimezone(timezone.utc)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def new_key_secret(environment: str) -> str:
    return f"sk_{environment}_{secrets.token_urlsafe(24)}"


@dataclass
class Key:
    id: str
    name: str
    environment: str
    secret: str
    seq: int
    created_at: datetime = field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "environment": self.environment,
            "prefix": self.secret[:12],
            "createdAt": rfc3339(self.created_at),
            "lastUsedAt": rfc3339(self.last_used_at),
            "revokedAt": rfc3339(self.revoked_at),
        }


@dataclass
class Document:
    id: str
    environment: str
    filename: str
    data: bytes
    pages: int
    seq: int
    sha256: str = ""
    created_at: datetime = field(default_factory=utcnow)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "filename": self.filename,
            "contentType": "application/pdf",
            "size": len(self.data),
            "sha256": self.sha256,
            "pages": self.pages,
            "createdAt": rfc3339(self.created_at),
        }


@dataclass
class Recipient:
    id: str
    email: str
    name: str
    role: str
    order: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    status: str = "PENDING"
    sign_url: str | None = None
    signed_at: datetime | None = None
    decline_reason: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "order": self.order,
            "status": self.status,
            "signUrl": self.sign_url,
            "signedAt": rfc3339(self.signed_at),
            "declineReason": self.decline_reason,
        }


@dataclass
class Envelope:
    id: str
    environment: str
    subject: str
    message: str | None
    signing_order: str
    document_ids: list[str]
    recipients: list[Recipient]
    seq: int
    status: str = "DRAFT"
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    sent_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    history: list[tuple[datetime, str]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subject": self.subject,
            "message": self.message,
            "status": self.status,
            "signingOrder": self.signing_order,
            "documentIds": list(self.document_ids),
            "recipients": [r.public() for r in self.recipients],
            "createdAt": rfc3339(self.created_at),
            "updatedAt": rfc3339(self.updated_at),
            "sentAt": rfc3339(self.sent_at),
            "completedAt": rfc3339(self.completed_at),
            "expiresAt": rfc3339(self.expires_at),
        }

    def signers(self) -> list[Recipient]:
        return [r for r in self.recipients if r.role == "SIGNER"]

    def current_order(self) -> int | None:
        """The order whose signers may sign now (SEQUENTIAL), or None when nobody is waiting."""
        pending = [r.order for r in self.signers() if r.status == "PENDING"]
        return min(pending) if pending else None


@dataclass
class Webhook:
    id: str
    environment: str
    url: str
    events: list[str]
    secret: str
    seq: int
    created_at: datetime = field(default_factory=utcnow)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "createdAt": rfc3339(self.created_at),
        }


def paginate(items: list[Any], limit: int, cursor: str | None) -> tuple[list[Any], str | None]:
    """Newest first; the cursor is the opaque position after the last item handed out."""
    ordered = sorted(items, key=lambda item: item.seq, reverse=True)
    if cursor is not None:
        try:
            before = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode().removeprefix("seq:"))
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise validation("cursor is not one this server handed out", {"field": "cursor"}) from exc
        ordered = [item for item in ordered if item.seq < before]
    page = ordered[:limit]
    more = len(ordered) > limit
    next_cursor = (
        base64.urlsafe_b64encode(f"seq:{page[-1].seq}".encode()).decode().rstrip("=") if more else None
    )
    return page, next_cursor
