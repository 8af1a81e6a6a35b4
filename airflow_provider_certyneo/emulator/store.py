"""The emulator's in-memory state (keys, documents, envelopes, webhooks) and the envelope state machine.

Every public method takes the caller's environment (``test`` or ``live``) so that the two never see
each other's objects, runs under one lock, and raises :class:`ApiError` exactly where the contract says
the real service answers with an error. The objects are in :mod:`.models`, the checks of request bodies in
:mod:`.checks`, the PDFs it serves in :mod:`.evidence`, sealed with the test PKI of :mod:`.seal` (made once
per state, kept across resets and in the state file).
"""

from __future__ import annotations

import hashlib
import pickle
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_certyneo.emulator import evidence
from airflow_provider_certyneo.emulator.checks import check_envelope_fields, check_upload, check_webhook
from airflow_provider_certyneo.emulator.errors import ApiError, invalid_state, not_found, validation
from airflow_provider_certyneo.emulator.models import (
    ENVIRONMENTS,
    KEY_PATTERN,
    Document,
    Envelope,
    Key,
    Recipient,
    Webhook,
    new_id,
    new_key_secret,
    utcnow,
)
from airflow_provider_certyneo.emulator.seal import Sealer, TestPki, new_pki

EventSink = Callable[[str, str, dict[str, Any]], None]


class Store:
    """All state of one emulator. Thread-safe: every method holds ``self.lock``."""

    def __init__(self, envelope_lifetime: timedelta = timedelta(days=30)) -> None:
        self.lock = threading.RLock()
        self.envelope_lifetime = envelope_lifetime
        self.clock_skew = timedelta(0)
        self.on_event: EventSink = lambda environment, kind, envelope: None
        # called (outside the lock) when a download sealed new bytes, so the state file keeps them
        self.on_sealed: Callable[[], None] = lambda: None
        self.pki: TestPki | None = None
        self._sealer: Sealer | None = None
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
            # sealed bytes served, by envelope: "signed" once COMPLETED; the trail with the version it shows
            self.sealed: dict[str, dict[str, Any]] = {}

    def now(self) -> datetime:
        """The service's clock: this machine's, shifted by ``clock_skew`` (to test clients whose clock is
        off)."""
        return utcnow() + self.clock_skew

    STATE_FIELDS = (
        "_seq",
        "keys",
        "keys_by_secret",
        "documents",
        "envelopes",
        "webhooks",
        "sends",
        "sealed",
        "pki",
    )

    def snapshot(self) -> bytes:
        """Every object and send count, as bytes a later :meth:`restore` (in another process) takes back."""
        with self.lock:
            return pickle.dumps({name: getattr(self, name) for name in self.STATE_FIELDS})

    def restore(self, data: bytes) -> None:
        """Take back what :meth:`snapshot` wrote (trusted input: the emulator's own state file)."""
        state = pickle.loads(data)
        with self.lock:
            for name in self.STATE_FIELDS:
                if name in state:  # a state file from before the seals has no "sealed" nor "pki"
                    setattr(self, name, state[name])
            self._sealer = None

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
        pages = check_upload(data)
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

    def _has_document(self, environment: str, document_id: str) -> bool:
        document = self.documents.get(document_id)
        return document is not None and document.environment == environment

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
            check_envelope_fields(fields, False, lambda d: self._has_document(environment, d))
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
            check_envelope_fields(fields, True, lambda d: self._has_document(environment, d))
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

    def trust_root_pem(self) -> str:
        """The test root CA every seal of this emulator chains to (PEM), made on first use."""
        return self._test_pki().root_pem

    def _test_pki(self) -> TestPki:
        with self.lock:
            if self.pki is None:
                self.pki = new_pki()
            return self.pki

    def _seal(self, data: bytes, reason: str) -> bytes:
        with self.lock:
            if self._sealer is None:
                self._sealer = Sealer(self._test_pki())
            sealer = self._sealer
        return sealer.seal(data, reason)

    def _sealed_signed_document(self, envelope: Envelope, documents: list[Document]) -> bytes:
        """Sealed once per envelope (outside the lock: sealing takes milliseconds), then always the same
        bytes; of two concurrent first downloads, the bytes stored first are the ones both serve."""
        with self.lock:
            cached = self.sealed.get(envelope.id, {}).get("signed")
            if cached is not None:
                return bytes(cached)
            unsealed = evidence.signed_pdf(envelope, documents)
        data = self._seal(unsealed, f"Signed by the signers of envelope {envelope.id}")
        with self.lock:
            data = self.sealed.setdefault(envelope.id, {}).setdefault("signed", data)
        self.on_sealed()
        return bytes(data)

    def signed_document(self, environment: str, envelope_id: str) -> tuple[str, bytes]:
        with self.lock:
            envelope = self.get_envelope(environment, envelope_id)
            if envelope.status != "COMPLETED":
                raise invalid_state(
                    f"the signed document exists once COMPLETED; envelope is {envelope.status}",
                    envelope.status,
                )
            documents = [self.documents[d] for d in envelope.document_ids if d in self.documents]
        return f"{envelope.id}-signed.pdf", self._sealed_signed_document(envelope, documents)

    def audit_trail(self, environment: str, envelope_id: str) -> tuple[str, bytes]:
        with self.lock:
            envelope = self.get_envelope(environment, envelope_id)
            if envelope.status == "DRAFT":
                raise invalid_state("the audit trail exists once the envelope is sent; it is DRAFT", "DRAFT")
            documents = [self.documents[d] for d in envelope.document_ids if d in self.documents]
            version = (envelope.status, len(envelope.history))
        signed_sha256 = None
        if version[0] == "COMPLETED":
            signed_sha256 = hashlib.sha256(self._sealed_signed_document(envelope, documents)).hexdigest()
        with self.lock:
            cached = self.sealed.get(envelope.id, {}).get("trail")
            if cached is not None and cached[0] == version:
                return f"{envelope.id}-audit-trail.pdf", bytes(cached[1])
            unsealed = evidence.audit_trail_pdf(evidence.trail_record(envelope, documents, signed_sha256))
        data = self._seal(unsealed, f"Audit trail of envelope {envelope.id}")
        with self.lock:
            entry = self.sealed.setdefault(envelope.id, {})
            if entry.get("trail", ((), b""))[0] == version:
                data = entry["trail"][1]
            else:
                entry["trail"] = (version, data)
        self.on_sealed()
        return f"{envelope.id}-audit-trail.pdf", bytes(data)

    # Webhooks ---------------------------------------------------------------------------------------

    def add_webhook(self, environment: str, url: Any, events: Any) -> Webhook:
        check_webhook(url, events)
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
