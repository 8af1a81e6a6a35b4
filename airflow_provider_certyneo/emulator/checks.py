"""What the emulator refuses in a request body, and how: 422 ``validation_error`` naming the field, as the
contract says the real service does."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from airflow_provider_certyneo.emulator import pdf
from airflow_provider_certyneo.emulator.errors import ApiError, validation
from airflow_provider_certyneo.emulator.models import EMAIL, MAX_UPLOAD_BYTES, ROLES, WEBHOOK_EVENTS


def check_upload(data: bytes) -> int:
    """A PDF of at most 25 MiB (413, 415 otherwise); its page count."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApiError(413, "payload_too_large", f"file is {len(data)} bytes; the limit is 25 MiB")
    if not data.startswith(b"%PDF-"):
        raise ApiError(415, "unsupported_media_type", "file is not a PDF (it must start with %PDF-)")
    try:
        return pdf.count_pages(data)
    except ValueError as exc:
        raise ApiError(415, "unsupported_media_type", f"file is not a readable PDF: {exc}") from exc


def check_webhook(url: Any, events: Any) -> None:
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url) or len(url) > 2000:
        raise validation("url must be an absolute http(s) URL", {"field": "url"})
    if not isinstance(events, list) or not events or any(e not in WEBHOOK_EVENTS for e in events):
        raise validation(
            f"events must be a non-empty list of {', '.join(WEBHOOK_EVENTS)}", {"field": "events"}
        )


def check_envelope_fields(
    fields: dict[str, Any], partial: bool, document_exists: Callable[[str], bool]
) -> None:
    """Refuse an envelope body as the contract says (422 ``validation_error`` naming the field)."""
    if "subject" in fields or not partial:
        subject = fields.get("subject")
        if not isinstance(subject, str) or not 1 <= len(subject) <= 200:
            raise validation("subject must be 1 to 200 characters", {"field": "subject"})
    if "documentIds" in fields or not partial:
        ids = fields.get("documentIds")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 20:
            raise validation("documentIds must hold 1 to 20 document ids", {"field": "documentIds"})
        for index, document_id in enumerate(ids):
            if not document_exists(document_id):
                raise validation(
                    f"document {document_id!r} does not exist", {"field": f"documentIds[{index}]"}
                )
    if "recipients" in fields or not partial:
        check_recipients(fields.get("recipients"))
    if fields.get("signingOrder", "PARALLEL") not in ("PARALLEL", "SEQUENTIAL"):
        raise validation("signingOrder must be PARALLEL or SEQUENTIAL", {"field": "signingOrder"})
    message = fields.get("message")
    if message is not None and (not isinstance(message, str) or len(message) > 5000):
        raise validation("message must be at most 5000 characters", {"field": "message"})


def check_recipients(recipients: Any) -> None:
    """1 to 50 recipients, valid and distinct e-mails, names, roles, orders, and at least one SIGNER."""
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
            raise validation(f"{where}.role must be one of {', '.join(ROLES)}", {"field": f"{where}.role"})
        order = recipient.get("order")
        if order is not None and (not isinstance(order, int) or isinstance(order, bool) or order < 1):
            raise validation(f"{where}.order must be an integer >= 1", {"field": f"{where}.order"})
    if not any(r.get("role", "SIGNER") == "SIGNER" for r in recipients):
        raise validation("recipients must include at least one SIGNER", {"field": "recipients"})
