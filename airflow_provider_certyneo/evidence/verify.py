"""Verify one envelope's evidence: the seal of the signed PDF, the seal of the audit trail, and the trail's
``audit-trail.json`` against the envelope, its documents and the signed PDF. The operator runs this on what
it has just archived; ``certyneo-evidence verify`` runs it again, later, on what the bundle recorded."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_certyneo.evidence.audit_trail import TRAIL_ATTACHMENT, check_trail, parse_trail
from airflow_provider_certyneo.evidence.checks import Report
from airflow_provider_certyneo.evidence.seal import attachment, check_seal


def verify_evidence(
    signed_pdf: bytes,
    audit_trail_pdf: bytes,
    envelope: Mapping[str, Any],
    documents: Sequence[Mapping[str, Any]],
    trust_roots: list[Any],
    uploaded_sha256: Mapping[str, str] | None = None,
) -> Report:
    """Every check, in order: ``signed_document.*`` (seal), ``audit_trail.*`` (seal, then contents)."""
    report = Report()
    check_seal(signed_pdf, "signed_document", trust_roots, report)
    reader = check_seal(audit_trail_pdf, "audit_trail", trust_roots, report)
    trail = parse_trail(attachment(reader, TRAIL_ATTACHMENT) if reader is not None else None, report)
    if trail is not None:
        check_trail(
            trail,
            envelope,
            documents,
            dict(uploaded_sha256 or {}),
            hashlib.sha256(signed_pdf).hexdigest(),
            report,
        )
    return report
