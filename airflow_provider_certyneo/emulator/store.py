"""The emulator's in-memory state: keys, documents, envelopes and webhooks, and the envelope state machine.

Every public method takes the caller's environment (``test`` or ``live``) so that the two never see
each other's objects, runs under one lock, and raises :class:`ApiError` exactly where the contract says
the real service answers with an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import pickle
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_certyneo.emulator import pdf
from airflow_provider_certyneo.emulator.errors import ApiError, invalid_state, not_found, validation

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


EventSink = Callable[[str, str, dict[str, Any]], None]


class Store:
    """All state of one emulator. Thread-safe: every method holds ``self.lock``."""

    def __init__(self, envelope_lifetime: timedelta = timedelta(days=30)) -> None:
        self.lock = threading.RLock()
        self.envelope_lifetime = envelope_lifetime
        self.clock_skew = timedelta(0)
        self.on_event: EventSink = lambda environment, kind, envelope: None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self._seq = 0
            self.keys: dict[str, Key] = {}
            self.keys_by_secret: dict[str, Key] = {}
            self.documents: dict[str, Document] = {}
            self.envelopes: dict[str, Envelope] = {}
            self.webhooks: dict[str, Webhook] = {}
            self.sends: Counter[str] = Counter()

    def now(self) -> datetime:
        """The service's clock: this machine's, shifted by ``clock_skew`` (to test clients whose clock is
        off)."""
        return utcnow() + self.clock_skew

    STATE_FIELDS = ("_seq", "keys", "keys_by_secret", "documents", "envelopes", "webhooks", "sends")

    def snapshot(self) -> bytes:
        """Every object and send count, as bytes a later :meth:`restore` (in another process) takes back."""
        with self.lock:
            return pickle.dumps({name: getattr(self, name) for name in self.STATE_FIELDS})

    def restore(self, data: bytes) -> None:
        """Take back what :meth:`snapshot` wrote (trusted input: the emulator's own state file)."""
        state = pickle.loads(data)
        with self.lock:
            for name in self.STATE_FIELDS:
                setattr(self, name, state[name])

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # Keys -------------------------------------------------------------------------------------------

    def add_key(self, name: str, environment: str, secret: str | None = None) -> Key:
        if environment not in ENVIRONMENTS:
            raise validation("environment must be 'test' or 'live'", {"field": "environment"})
        secret = secret or new_key_secret(environment)
        if not KEY_PATTERN.match(secret) or not secret.startswith(f"sk_{environment}_"):
            raise ValueError(f"a {environment} key looks like sk_{environment}_ + 24 url-safe characters")
        with self.lock:
            if secret in self.keys_by_secret:
                return self.keys_by_secret[secret]
            key = Key(new_id("key"), name, environment, secret, self._next_seq(), created_at=self.now())
            self.keys[key.id] = key
            self.keys_by_secret[secret] = key
            return key

    def authenticate(self, authorization: str | None) -> Key:
        if not authorization:
            raise ApiError(401, "unauthorized", "missing Authorization header (expected 'Bearer sk_…')")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not KEY_PATTERN.match(token.strip()):
            raise ApiError(401, "unauthorized", "malformed Authorization header (expected 'Bearer sk_…')")
        with self.lock:
            key = self.keys_by_secret.get(token.strip())
            if key is None:
                raise ApiError(401, "unauthorized", "unknown API key")
            if key.revoked_at is not None:
                raise ApiError(401, "unauthorized", "this API key has been revoked")
            key.last_used_at = self.now()
            return key

    def list_keys(self, environment: str) -> list[Key]:
        with self.lock:
            return [k for k in self.keys.values() if k.environment == environment]

    def revoke_key(self, environment: str, key_id: str) -> None:
        with self.lock:
            key = self.keys.get(key_id)
            if key is None or key.environment != environment:
                raise not_found("key", key_id)
            if key.revoked_at is None:
                key.revoked_at = self.now()

    # Documents --------------------------------------------------------------------------------------

    def add_document(self, environment: str, filename: str, data: bytes) -> Document:
        if len(data) > MAX_UPLOAD_BYTES:
            raise ApiError(413, "payload_too_large", f"file is {len(data)} bytes; the limit is 25 MiB")
        if not data.startswith(b"%PDF-"):
            raise ApiError(415, "unsupported_media_type", "file is not a PDF (it must start with %PDF-)")
        try:
            pages = pdf.count_pages(data)
        except ValueError as exc:
            raise ApiError(415, "unsupported_media_type", f"file is not a readable PDF: {exc}") from exc
        with self.lock:
            document = Document(
                new_id("doc"),
                environment,
                filename or "document.pdf",
                data,
                pages,
                self._next_seq(),
                created_at=self.now(),
            )
            document.sha256 = hashlib.sha256(data).hexdigest()
            self.documents[document.id] = document
            return document

    def get_document(self, environment: str, document_id: str) -> Document:
        with self.lock:
            document = self.documents.get(document_id)
            if document is None or document.environment != environment:
                raise not_found("document", document_id)
            return document

    def delete_document(self, environment: str, document_id: str) -> None:
        with self.lock:
            document = self.get_document(environment, document_id)
            for envelope in self.envelopes.values():
                if document.id in envelope.document_ids and envelope.status != "DRAFT":
                    raise invalid_state(
                        f"document {document_id!r} is used by envelope {envelope.id!r} ({envelope.status})",
                        envelope.status,
                    )
            del self.documents[document.id]

    # Envelopes --------------------------------------------------------------------------------------

    def _check_envelope_fields(self, environment: str, fields: dict[str, Any], partial: bool) -> None:
        if "subject" in fields or not partial:
            subject = fields.get("subject")
            if not isinstance(subject, str) or not 1 <= len(subject) <= 200:
                raise validation("subject must be 1 to 200 characters", {"field": "subject"})
        if "documentIds" in fields or not partial:
            ids = fields.get("documentIds")
            if not isinstance(ids, list) or not 1 <= len(ids) <= 20:
                raise validation("documentIds must hold 1 to 20 document ids", {"field": "documentIds"})
            for index, document_id in enumerate(ids):
                document = self.documents.get(document_id)
                if document is None or document.environment != environment:
                    raise validation(
                        f"document {document_id!r} does not exist", {"field": f"documentIds[{index}]"}
                    )
        if "recipients" in fields or not partial:
            self._check_recipients(fields.get("recipients"))
        if fields.get("signingOrder", "PARALLEL") not in ("PARALLEL", "SEQUENTIAL"):
            raise validation("signingOrder must be PARALLEL or SEQUENTIAL", {"field": "signingOrder"})
        message = fields.get("message")
        if message is not None and (not isinstance(message, str) or len(message) > 5000):
            raise validation("message must be at most 5000 characters", {"field": "message"})

    @staticmethod
    def _check_recipients(recipients: Any) -> None:
        if not isinstance(recipients, list) or not 1 <= len(recipients) <= 50:
            raise validation("recipients must hold 1 to 50 recipients", {"field": "recipients"})
        seen: set[str] = set()
        for index, recipient in enumerate(recipients):
            where = f"recipients[{index}]"
            email = recipient.get("email")
            if not isinstance(email, str) or not EMAIL.match(email):
                raise validation(
                    f"{where}.email {email!r} is not a valid e-mail address", {"field": f"{where}.email"}
                )
            if email.lower() in seen:
                raise validation(f"{where}.email {email!r} appears twice", {"field": f"{where}.email"})
            seen.add(email.lower())
            name = recipient.get("name")
            if not isinstance(name, str) or not 1 <= len(name) <= 200:
                raise validation(f"{where}.name must be 1 to 200 characters", {"field": f"{where}.name"})
            if recipient.get("role", "SIGNER") not in ROLES:
                raise validation(
                    f"{where}.role must be one of {', '.join(ROLES)}", {"field": f"{where}.role"}
                )
            order = recipient.get("order")
            if order is not None and (not isinstance(order, int) or isinstance(order, bool) or order < 1):
                raise validation(f"{where}.order must be an integer >= 1", {"field": f"{where}.order"})
        if not any(r.get("role", "SIGNER") == "SIGNER" for r in recipients):
            raise validation("recipients must include at least one SIGNER", {"field": "recipients"})

    @staticmethod
    def _recipients(raw: list[dict[str, Any]]) -> list[Recipient]:
        return [
            Recipient(
                new_id("rcp"),
                r["email"],
                r["name"],
                r.get("role", "SIGNER"),
                r.get("order") or index,
            )
            for index, r in enumerate(raw, start=1)
        ]

    def create_envelope(self, environment: str, fields: dict[str, Any]) -> Envelope:
        with self.lock:
            self._check_envelope_fields(environment, fields, partial=False)
            envelope = Envelope(
                new_id("env"),
                environment,
                fields["subject"],
                fields.get("message"),
                fields.get("signingOrder", "PARALLEL"),
                list(fields["documentIds"]),
                self._recipients(fields["recipients"]),
                self._next_seq(),
            )
            envelope.created_at = envelope.updated_at = self.now()
            envelope.history.append((envelope.created_at, "Envelope created"))
            self.envelopes[envelope.id] = envelope
            self.on_event(environment, "envelope.created", envelope.public())
            return envelope

    def get_envelope(self, environment: str, envelope_id: str) -> Envelope:
        with self.lock:
            envelope = self.envelopes.get(envelope_id)
            if envelope is None or envelope.environment != environment:
                raise not_found("envelope", envelope_id)
            self._expire_if_due(envelope)
            return envelope

    def _expire_if_due(self, envelope: Envelope) -> None:
        if (
            envelope.status == "SENT"
            and envelope.expires_at is not None
            and self.now() >= envelope.expires_at
        ):
            self._move(envelope, "EXPIRED", "Envelope expired unsigned")

    def _move(self, envelope: Envelope, status: str, note: str) -> None:
        envelope.status = status
        envelope.updated_at = self.now()
        envelope.history.append((envelope.updated_at, note))

    def update_envelope(self, environment: str, envelope_id: str, fields: dict[str, Any]) -> Envelope:
        with self.lock:
            envelope = self.get_envelope(environment, envelope_id)
            if envelope.status != "DRAFT":
                raise invalid_state(
                    f"only a DRAFT envelope can be updated; this one is {envelope.status}", envelope.status
                )
            self._check_envelope_fields(environment, fields, partial=True)
            if "subject" in fields:
                envelope.subject = fields["subject"]
            if "message" in fields:
                envelope.message = fields["message"]
            if "signingOrder" in fields:
                envelope.signing_order = fields["signingOrder"]
            if "documentIds" in fields:
                envelope.document_ids = list(fields["documentIds"])
            if "recipients" in fields:
                envelope.recipients = self._recipients(fields["recipients"])
            self._move(envelope, "DRAFT", "Envelope updated")
            return envelope

    def delete_envelope(self, environment: str, envelope_id: str) -> Envelope | None:
        """Delete a DRAFT (returns None) or void a SENT envelope (returns it); terminal is a 409."""
        with self.lock:
            envelope = self.get_envelope(environment, envelope_id)
            if envelope.status == "DRAFT":
                del self.envelopes[envelope.id]
                return None
            if envelope.status == "SENT":
                self._move(envelope, "VOIDED", "Envelope voided by the sender")
                return envelope
            raise invalid_state(f"envelope is {envelope.status} and can no longer be voided", envelope.status)

    def send_envelope(self, environment: str, envelope_id: str, public_url: str) -> Envelope:
        with self.lock:
            envelope = self.get_envelope(environment, envelope_id)
            if envelope.status != "DRAFT":
                raise invalid_state(
                    f"only a DRAFT envelope can be sent; this one is {envelope.status}", envelope.status
                )
            for document_id in envelope.document_ids:
                if document_id not in self.documents:
                    raise validation(f"document {document_id!r} was deleted", {"field": "documentIds"})
            now = self.now()
            envelope.sent_at = now
            envelope.expires_at = now + self.envelope_lifetime
            for recipient in envelope.signers():
                recipient.sign_url = f"{public_url.rstrip('/')}/sign/{recipient.token}"
            self._move(
                envelope,
                "SENT",
                "Envelope sent; invitations e-mailed to "
                + ", ".join(f"{r.name} <{r.email}>" for r in envelope.signers()),
            )
            self.sends[envelope.id] += 1
            return envelope

    def list_envelopes(
        self, environment: str, statuses: list[str], updated_since: datetime | None
    ) -> list[Envelope]:
        with self.lock:
            found = []
            for envelope in self.envelopes.values():
                if envelope.environment != environment:
                    continue
                self._expire_if_due(envelope)
                if statuses and envelope.status not in statuses:
                    continue
                if updated_since is not None and envelope.updated_at < updated_since:
                    continue
                found.append(envelope)
            return found

    # Signing ----------------------------------------------------------------------------------------

    def recipient_by_token(self, token: str) -> tuple[Envelope, Recipient]:
        with self.lock:
            for envelope in self.envelopes.values():
                for recipient in envelope.recipients:
                    if recipient.token == token:
                        self._expire_if_due(envelope)
                        return envelope, recipient
        raise ApiError(404, "not_found", "this signing link is not valid")

    def _pick(self, envelope: Envelope, email: str | None) -> Recipient:
        if envelope.status != "SENT":
            raise invalid_state(f"envelope is {envelope.status}, not SENT", envelope.status)
        pending = [r for r in envelope.signers() if r.status == "PENDING"]
        if email is not None:
            pending = [r for r in pending if r.email.lower() == email.lower()]
        elif envelope.signing_order == "SEQUENTIAL":
            pending = [r for r in pending if r.order == envelope.current_order()]
        if not pending:
            raise validation(f"no pending signer {email or ''} on envelope {envelope.id}".replace("  ", " "))
        return pending[0]

    def sign(self, envelope: Envelope, recipient: Recipient) -> None:
        with self.lock:
            if envelope.status != "SENT" or recipient.status != "PENDING" or recipient.role != "SIGNER":
                raise invalid_state(f"{recipient.email} cannot sign now", envelope.status)
            if envelope.signing_order == "SEQUENTIAL" and recipient.order != envelope.current_order():
                raise invalid_state(
                    f"{recipient.email} signs after the signers of order {envelope.current_order()}",
                    envelope.status,
                )
            recipient.status = "SIGNED"
            recipient.signed_at = self.now()
            self._move(envelope, "SENT", f"Signed by {recipient.name} <{recipient.email}>")
            if all(r.status == "SIGNED" for r in envelope.signers()):
                envelope.completed_at = self.now()
                self._move(envelope, "COMPLETED", "All signers signed; envelope completed")
                self.on_event(envelope.environment, "envelope.completed", envelope.public())

    def decline(self, envelope: Envelope, recipient: Recipient, reason: str | None) -> None:
        with self.lock:
            if envelope.status != "SENT" or recipient.status != "PENDING" or recipient.role != "SIGNER":
                raise invalid_state(f"{recipient.email} cannot decline now", envelope.status)
            recipient.status = "DECLINED"
            recipient.decline_reason = reason or None
            self._move(
                envelope, "DECLINED", f"Declined by {recipient.name} <{recipient.email}>: {reason or '-'}"
            )
            self.on_event(envelope.environment, "envelope.declined", envelope.public())

    def sign_next(self, envelope_id: str, email: str | None = None, everyone: bool = True) -> Envelope:
        """Control API: sign as the pending signer(s) would, in signing order."""
        with self.lock:
            envelope = self._any_envelope(envelope_id)
            self.sign(envelope, self._pick(envelope, email))
            while everyone and email is None and envelope.status == "SENT":
                self.sign(envelope, self._pick(envelope, None))
            return envelope

    def decline_next(self, envelope_id: str, email: str | None, reason: str | None) -> Envelope:
        with self.lock:
            envelope = self._any_envelope(envelope_id)
            self.decline(envelope, self._pick(envelope, email), reason)
            return envelope

    def expire(self, envelope_id: str) -> Envelope:
        with self.lock:
            envelope = self._any_envelope(envelope_id)
            if envelope.status != "SENT":
                raise invalid_state(f"envelope is {envelope.status}, not SENT", envelope.status)
            envelope.expires_at = self.now()
            self._expire_if_due(envelope)
            return envelope

    def _any_envelope(self, envelope_id: str) -> Envelope:
        envelope = self.envelopes.get(envelope_id)
        if envelope is None:
            raise not_found("envelope", envelope_id)
        self._expire_if_due(envelope)
        return envelope

    # Downloads --------------------------------------------------------------------------------------

    def signed_document(self, environment: str, envelope_id: str) -> tuple[str, bytes]:
        with self.lock:
            envelope = self.get_envelope(environment, envelope_id)
            if envelope.status != "COMPLETED":
                raise invalid_state(
                    f"the signed document exists once COMPLETED; envelope is {envelope.status}",
                    envelope.status,
                )
            originals = [self.documents[d].data for d in envelope.document_ids if d in self.documents]
            lines = [f"Envelope {envelope.id}: {envelope.subject}", ""]
            for r in envelope.signers():
                lines.append(f"Signed by {r.name} <{r.email}> at {rfc3339(r.signed_at)}")
            lines += [
                "",
                f"Completed at {rfc3339(envelope.completed_at)}",
                "Certyneo emulator - eIDAS simple signature",
            ]
        return f"{envelope.id}-signed.pdf", pdf.merge(originals, pdf.text_pdf("Signature page", lines))

    def audit_trail(self, environment: str, envelope_id: str) -> tuple[str, bytes]:
        with self.lock:
            envelope = self.get_envelope(environment, envelope_id)
            if envelope.status == "DRAFT":
                raise invalid_state("the audit trail exists once the envelope is sent; it is DRAFT", "DRAFT")
            lines = [
                f"Envelope {envelope.id}: {envelope.subject}",
                f"Status: {envelope.status}",
                "",
                "Documents:",
            ]
            for document_id in envelope.document_ids:
                document = self.documents.get(document_id)
                if document is not None:
                    lines.append(f"  {document.filename} ({document.id}) SHA-256 {document.sha256}")
            lines += ["", "Events:"]
            lines += [f"  {rfc3339(moment)}  {note}" for moment, note in envelope.history]
        return f"{envelope.id}-audit-trail.pdf", pdf.text_pdf("eIDAS audit trail", lines)

    # Webhooks ---------------------------------------------------------------------------------------

    def add_webhook(self, environment: str, url: Any, events: Any) -> Webhook:
        if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url) or len(url) > 2000:
            raise validation("url must be an absolute http(s) URL", {"field": "url"})
        if not isinstance(events, list) or not events or any(e not in WEBHOOK_EVENTS for e in events):
            raise validation(
                f"events must be a non-empty list of {', '.join(WEBHOOK_EVENTS)}", {"field": "events"}
            )
        with self.lock:
            webhook = Webhook(
                new_id("whk"),
                environment,
                url,
                list(dict.fromkeys(events)),
                "whsec_" + secrets.token_urlsafe(24),
                self._next_seq(),
                created_at=self.now(),
            )
            self.webhooks[webhook.id] = webhook
            return webhook

    def delete_webhook(self, environment: str, webhook_id: str) -> None:
        with self.lock:
            webhook = self.webhooks.get(webhook_id)
            if webhook is None or webhook.environment != environment:
                raise not_found("webhook", webhook_id)
            del self.webhooks[webhook_id]

    def webhooks_for(self, environment: str, kind: str) -> list[Webhook]:
        with self.lock:
            return [w for w in self.webhooks.values() if w.environment == environment and kind in w.events]


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
