"""Checks of ``audit-trail.json`` (the file the sealed audit trail embeds) against what the provider knows:
the envelope, the records of its documents, the SHA-256 computed when the provider uploaded them, and the
signed PDF archived beside it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from airflow_provider_certyneo.evidence.checks import Report

TRAIL_ATTACHMENT = "audit-trail.json"
FIELDS = ("envelopeId", "documents", "signers", "events", "signedDocumentSha256")


def parse_trail(raw: bytes | None, report: Report) -> dict[str, Any] | None:
    """``audit-trail.json`` as a mapping, or None (and a failed ``audit_trail.attachment``)."""
    if raw is None:
        report.add("audit_trail.attachment", False, f"the audit trail has no attached {TRAIL_ATTACHMENT}")
        return None
    try:
        trail = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        report.add("audit_trail.attachment", False, f"{TRAIL_ATTACHMENT} is not JSON ({exc})")
        return None
    missing = [name for name in FIELDS if not isinstance(trail, dict) or name not in trail]
    if missing:
        report.add("audit_trail.attachment", False, f"{TRAIL_ATTACHMENT} lacks {', '.join(missing)}")
        return None
    report.add("audit_trail.attachment", True, f"{TRAIL_ATTACHMENT} attached")
    return dict(trail)


def _same_moment(a: Any, b: Any) -> bool:
    if not a or not b:
        return a == b
    try:
        return datetime.fromisoformat(str(a).replace("Z", "+00:00")) == datetime.fromisoformat(
            str(b).replace("Z", "+00:00")
        )
    except ValueError:
        return str(a) == str(b)


def check_trail(
    trail: dict[str, Any],
    envelope: Mapping[str, Any],
    documents: Sequence[Mapping[str, Any]],
    uploaded_sha256: Mapping[str, str],
    signed_sha256: str,
    report: Report,
) -> None:
    """Add ``audit_trail.envelope``, ``.documents``, ``.uploads``, ``.signed_document`` and ``.signers``."""
    envelope_id = envelope.get("id")
    trail_id, trail_status = trail.get("envelopeId"), trail.get("status")
    if trail_id != envelope_id:
        report.add(
            "audit_trail.envelope",
            False,
            f"the audit trail is envelope {trail_id!r}'s, not {envelope_id!r}'s",
        )
    elif trail_status != "COMPLETED":
        report.add(
            "audit_trail.envelope", False, f"the audit trail shows status {trail_status!r}, not COMPLETED"
        )
    else:
        report.add("audit_trail.envelope", True, f"the audit trail is {envelope_id}'s, COMPLETED")

    listed = [d for d in trail.get("documents") or [] if isinstance(d, dict)]
    by_id = {str(d.get("id")): d for d in listed}
    expected_ids = [str(d) for d in envelope.get("documentIds") or []]
    problems = []
    if [str(d.get("id")) for d in listed] != expected_ids:
        problems.append(f"it lists documents {[d.get('id') for d in listed]}, the envelope {expected_ids}")
    for record in documents:
        entry = by_id.get(str(record.get("id")))
        if (
            entry is not None
            and str(entry.get("sha256", "")).lower() != str(record.get("sha256", "")).lower()
        ):
            problems.append(
                f"document {record.get('id')} has SHA-256 {entry.get('sha256')} in the trail but "
                f"{record.get('sha256')} in its record"
            )
    report.add(
        "audit_trail.documents",
        not problems,
        "; ".join(problems) or f"{len(listed)} document(s), SHA-256 as in their records",
    )

    mismatched = [
        f"document {document_id} was uploaded with SHA-256 {digest} but the trail says "
        f"{by_id[document_id].get('sha256') if document_id in by_id else 'nothing'}"
        for document_id, digest in uploaded_sha256.items()
        if str(by_id.get(document_id, {}).get("sha256", "")).lower() != str(digest).lower()
    ]
    report.add(
        "audit_trail.uploads",
        not mismatched,
        "; ".join(mismatched)
        or (
            f"SHA-256 of {len(uploaded_sha256)} upload(s) as computed by the provider"
            if uploaded_sha256
            else "no SHA-256 computed at upload was given (compared with the document records only)"
        ),
    )

    claimed = str(trail.get("signedDocumentSha256") or "")
    report.add(
        "audit_trail.signed_document",
        claimed.lower() == signed_sha256.lower(),
        f"the signed PDF's SHA-256 {signed_sha256}"
        if claimed.lower() == signed_sha256.lower()
        else (
            f"the trail is about a signed PDF with SHA-256 {claimed or 'null'}, "
            f"the archived one is {signed_sha256}"
        ),
    )

    report.add("audit_trail.signers", *_signers(trail, envelope))


def _signers(trail: dict[str, Any], envelope: Mapping[str, Any]) -> tuple[bool, str]:
    wanted = {
        str(r.get("email", "")).lower(): r
        for r in envelope.get("recipients") or []
        if str(r.get("role", "SIGNER")).upper() == "SIGNER"
    }
    listed = {str(s.get("email", "")).lower(): s for s in trail.get("signers") or [] if isinstance(s, dict)}
    problems = []
    if set(listed) != set(wanted):
        problems.append(f"the trail names signers {sorted(listed)}, the envelope {sorted(wanted)}")
    events = [e for e in trail.get("events") or [] if isinstance(e, dict)]
    for email in sorted(set(listed) & set(wanted)):
        signer = listed[email]
        if str(signer.get("status", "")).upper() != "SIGNED":
            problems.append(f"{email} is {signer.get('status')!r} in the trail")
        if not _same_moment(signer.get("signedAt"), wanted[email].get("signedAt")):
            problems.append(
                f"{email} signed at {signer.get('signedAt')} per the trail, {wanted[email].get('signedAt')} "
                "per the envelope"
            )
        if not any(
            "signed" in str(e.get("type", "")).lower()
            and "unsigned" not in str(e.get("type", "")).lower()
            and email in str(e.get("detail", "")).lower()
            for e in events
        ):
            problems.append(f"no signed event names {email}")
    return (not problems, "; ".join(problems) or f"{len(wanted)} signer(s), each with a signed event")
