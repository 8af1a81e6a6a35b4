"""Checks made before any request, so bad input fails with a message naming the field and the fix."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_certyneo.client.webhooks import EVENTS
from airflow_provider_certyneo.exceptions import CertyneoValidationError

MAX_DOCUMENT_BYTES = 25 * 1024 * 1024
MAX_SUBJECT = 200
MAX_RECIPIENTS = 50
MAX_DOCUMENTS = 20
MAX_MESSAGE = 5000
MAX_PAGE = 100
ENVIRONMENTS = ("test", "live")
SIGNING_ORDERS = ("PARALLEL", "SEQUENTIAL")
# This machine: the only hosts plain http may reach (the bundled emulator, a local test receiver).
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def invalid(message: str) -> CertyneoValidationError:
    return CertyneoValidationError(message, code="validation_error")


def check_subject(subject: Any) -> str:
    if not isinstance(subject, str) or not subject.strip():
        raise invalid("subject is empty: give the envelope a subject of 1 to 200 characters")
    if len(subject) > MAX_SUBJECT:
        raise invalid(f"subject is {len(subject)} characters long: shorten it to at most {MAX_SUBJECT}")
    return subject


def check_document_ids(document_ids: Any) -> list[str]:
    if isinstance(document_ids, str):
        document_ids = [document_ids]
    if not isinstance(document_ids, Sequence) or not document_ids:
        raise invalid("document_ids is empty: upload a PDF first and pass its id")
    if len(document_ids) > MAX_DOCUMENTS:
        raise invalid(
            f"document_ids holds {len(document_ids)} ids: an envelope takes at most {MAX_DOCUMENTS}"
        )
    for index, document_id in enumerate(document_ids):
        if not isinstance(document_id, str) or not document_id:
            raise invalid(f"document_ids[{index}] is {document_id!r}: expected a document id such as 'doc_…'")
    return list(document_ids)


def check_recipients(recipients: Any) -> list[dict[str, Any]]:
    """Normalised copies of ``recipients``; raises on bad e-mails, duplicates, or no SIGNER."""
    if isinstance(recipients, dict):
        recipients = [recipients]
    if not isinstance(recipients, Sequence) or isinstance(recipients, str) or not recipients:
        raise invalid("recipients is empty: add at least one recipient with role SIGNER")
    if len(recipients) > MAX_RECIPIENTS:
        raise invalid(
            f"recipients holds {len(recipients)} entries: an envelope takes at most {MAX_RECIPIENTS}"
        )
    seen: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    for index, raw in enumerate(recipients):
        where = f"recipients[{index}]"
        if not isinstance(raw, dict):
            raise invalid(f"{where} is {type(raw).__name__}: expected a mapping with 'email' and 'name'")
        email = raw.get("email")
        if not isinstance(email, str) or not EMAIL.match(email.strip()):
            raise invalid(f"{where}.email {email!r} is not a valid e-mail address")
        email = email.strip()
        if email.lower() in seen:
            raise invalid(f"{where}.email {email!r} is listed twice (also recipients[{seen[email.lower()]}])")
        seen[email.lower()] = index
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise invalid(f"{where}.name is empty: give the recipient's full name")
        if len(name) > 200:
            raise invalid(f"{where}.name is {len(name)} characters long: at most 200")
        recipient: dict[str, Any] = {**raw, "email": email, "name": name.strip()}
        recipient.setdefault("role", "SIGNER")
        if not isinstance(recipient["role"], str) or not recipient["role"]:
            raise invalid(f"{where}.role must be a string such as 'SIGNER' or 'CC'")
        order = recipient.get("order")
        if order is not None and (not isinstance(order, int) or isinstance(order, bool) or order < 1):
            raise invalid(f"{where}.order is {order!r}: expected an integer from 1 up")
        out.append(recipient)
    if not any(r["role"] == "SIGNER" for r in out):
        raise invalid("recipients has no SIGNER: at least one recipient must have role 'SIGNER'")
    return out


def check_signing_order(signing_order: Any) -> str:
    if signing_order not in SIGNING_ORDERS:
        raise invalid(f"signing_order is {signing_order!r}: use 'PARALLEL' or 'SEQUENTIAL'")
    return str(signing_order)


def check_pdf_header(head: bytes, size: int, name: str) -> None:
    """``head`` is the file's first bytes; refuses what the API would refuse, before uploading it."""
    if size == 0:
        raise invalid(f"{name} is empty (0 bytes): expected a PDF")
    if size > MAX_DOCUMENT_BYTES:
        raise invalid(f"{name} is {size / 1048576:.1f} MiB: Certyneo accepts PDFs of at most 25 MiB")
    if not head.startswith(b"%PDF-"):
        raise invalid(f"{name} is not a PDF (it does not start with %PDF-): convert it to PDF first")


def check_message(message: Any) -> str:
    if not isinstance(message, str) or len(message) > MAX_MESSAGE:
        raise invalid(f"message must be a string of at most {MAX_MESSAGE} characters")
    return message


def check_id(kind: str, object_id: Any) -> str:
    if not isinstance(object_id, str) or not object_id.strip():
        raise invalid(f"{kind} id is {object_id!r}: expected a non-empty id string")
    return object_id.strip()


def check_page_size(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise invalid(f"limit is {limit}: the API pages 1 to {MAX_PAGE} items at a time")
    return limit


def receiver_url_allowed(url: Any) -> bool:
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        host = parts.hostname if parts is not None else None
    except ValueError:
        return False
    if parts is None or not host:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in LOCAL_HOSTS)


def check_webhook(url: Any, events: Any) -> tuple[str, list[str]]:
    """An absolute https URL with a host: Certyneo posts signed events there, and over plain http anyone on
    the way could read them. Plain http only to this machine (a local receiver in tests and demos)."""
    if not receiver_url_allowed(url):
        raise invalid(
            f"webhook url {url!r} must be an absolute https:// URL "
            "(plain http:// only to localhost, 127.0.0.1 or [::1], for a local receiver)"
        )
    if not events or isinstance(events, str):
        raise invalid(f"events is {events!r}: pick a list from {', '.join(EVENTS)}")
    return url, list(events)


def check_key_request(name: Any, environment: Any) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise invalid("key name must be 1 to 100 characters")
    if environment is not None and environment not in ENVIRONMENTS:
        raise invalid(f"environment is {environment!r}: use 'test' or 'live'")


def check_aware(name: str, moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise invalid(f"{name} must be timezone-aware (e.g. pendulum.now('UTC'))")
    return moment
