"""The PDFs the emulator serves once an envelope moves on: the signed document (the originals followed by a
signature page) and the eIDAS audit trail (documents with their SHA-256, then every event)."""

from __future__ import annotations

from airflow_provider_certyneo.emulator import pdf
from airflow_provider_certyneo.emulator.models import Document, Envelope, rfc3339


def signed_pdf(envelope: Envelope, documents: list[Document]) -> bytes:
    lines = [f"Envelope {envelope.id}: {envelope.subject}", ""]
    for r in envelope.signers():
        lines.append(f"Signed by {r.name} <{r.email}> at {rfc3339(r.signed_at)}")
    lines += [
        "",
        f"Completed at {rfc3339(envelope.completed_at)}",
        "Certyneo emulator - eIDAS simple signature",
    ]
    return pdf.merge([d.data for d in documents], pdf.text_pdf("Signature page", lines))


def audit_trail_pdf(envelope: Envelope, documents: list[Document]) -> bytes:
    lines = [f"Envelope {envelope.id}: {envelope.subject}", f"Status: {envelope.status}", "", "Documents:"]
    lines += [f"  {d.filename} ({d.id}) SHA-256 {d.sha256}" for d in documents]
    lines += ["", "Events:"]
    lines += [f"  {rfc3339(moment)}  {note}" for moment, note in envelope.history]
    return pdf.text_pdf("eIDAS audit trail", lines)
