"""The PDFs the emulator serves once an envelope moves on, as the contract describes them: the signed document
(the originals followed by a signature page) and the eIDAS audit trail (documents with their SHA-256, then
every event, and the same as ``audit-trail.json`` attached to the PDF). Both are built here unsealed; the
store seals them (:mod:`.seal`) and keeps the sealed bytes, so one envelope always serves the same bytes."""

from __future__ import annotations

import io
import json
from typing import Any

from airflow_provider_certyneo.emulator import pdf
from airflow_provider_certyneo.emulator.models import Document, Envelope, rfc3339

TRAIL_ATTACHMENT = "audit-trail.json"

# The ``type`` of each audit-trail event, from the note the store writes in the envelope's history.
EVENT_TYPES = (
    ("Envelope created", "envelope.created"),
    ("Envelope updated", "envelope.updated"),
    ("Envelope sent", "envelope.sent"),
    ("Signed by", "recipient.signed"),
    ("Declined by", "recipient.declined"),
    ("All signers signed", "envelope.completed"),
    ("Envelope voided", "envelope.voided"),
    ("Envelope expired", "envelope.expired"),
)


def event_type(note: str) -> str:
    for prefix, kind in EVENT_TYPES:
        if note.startswith(prefix):
            return kind
    return "envelope.event"


def signed_pdf(envelope: Envelope, documents: list[Document]) -> bytes:
    """The envelope's documents, in order, followed by a signature page (unsealed)."""
    lines = [f"Envelope {envelope.id}: {envelope.subject}", ""]
    for r in envelope.signers():
        lines.append(f"Signed by {r.name} <{r.email}> at {rfc3339(r.signed_at)}")
    lines += [
        "",
        f"Completed at {rfc3339(envelope.completed_at)}",
        "Certyneo emulator - sealed with the emulator's test PKI (GET /_emulator/trust-root)",
    ]
    return pdf.merge([d.data for d in documents], pdf.text_pdf("Signature page", lines))


def trail_record(envelope: Envelope, documents: list[Document], signed_sha256: str | None) -> dict[str, Any]:
    """``audit-trail.json``, exactly the contract's fields."""
    return {
        "envelopeId": envelope.id,
        "subject": envelope.subject,
        "status": envelope.status,
        "documents": [{"id": d.id, "filename": d.filename, "sha256": d.sha256} for d in documents],
        "signers": [
            {"email": r.email, "name": r.name, "status": r.status, "signedAt": rfc3339(r.signed_at)}
            for r in envelope.signers()
        ],
        "events": [
            {"at": rfc3339(moment), "type": event_type(note), "detail": note}
            for moment, note in envelope.history
        ],
        "signedDocumentSha256": signed_sha256,
    }


def audit_trail_pdf(record: dict[str, Any]) -> bytes:
    """The human-readable trail of ``record`` with ``record`` itself attached as ``audit-trail.json``
    (unsealed)."""
    from pypdf import PdfReader, PdfWriter

    lines = [f"Envelope {record['envelopeId']}: {record['subject']}", f"Status: {record['status']}", ""]
    lines.append("Documents:")
    lines += [f"  {d['filename']} ({d['id']}) SHA-256 {d['sha256']}" for d in record["documents"]]
    lines += ["", "Events:"]
    lines += [f"  {e['at']}  {e['detail']}" for e in record["events"]]
    if record["signedDocumentSha256"]:
        lines += ["", f"Signed document SHA-256 {record['signedDocumentSha256']}"]
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf.text_pdf("eIDAS audit trail", lines))))
    writer.add_attachment(TRAIL_ATTACHMENT, json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
