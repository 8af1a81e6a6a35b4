"""Archive one envelope's evidence as a verified bundle: what ``CertyneoArchiveEvidenceOperator`` does for
each envelope, kept apart from Airflow so that it reads as the steps it takes.

Steps: skip a complete bundle; read the envelope (COMPLETED only) and its documents' records; download the
signed PDF and the audit trail into the bundle folder (each written whole, then renamed); verify what was
written; write ``evidence.json`` last. A bundle that fails verification gets ``evidence.rejected.json``
instead (the checks, for whoever looks into it) and no ``evidence.json``, unless the mode is ``warn``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from airflow_provider_certyneo.evidence import bundle
from airflow_provider_certyneo.evidence.checks import Report
from airflow_provider_certyneo.evidence.verify import verify_evidence
from airflow_provider_certyneo.exceptions import CertyneoNotFoundError, CertyneoValidationError

# top-level keys of evidence.json the operator writes; ``record_extra`` may not replace them
RESERVED = frozenset(
    {
        "format",
        "envelope_id",
        "subject",
        "status",
        "completed_at",
        "signers",
        "envelope",
        "documents",
        "uploaded_sha256",
        "signed_document",
        "audit_trail",
        "archived_at",
        "verification",
    }
)


class EvidenceSource(Protocol):
    """What archiving needs of a hook (``CertyneoHook`` has it)."""

    def get_envelope(self, envelope_id: str) -> Any: ...

    def get_document(self, document_id: str) -> Any: ...

    def download_signed_document(
        self, envelope_id: str, destination: Any, *, overwrite: bool = False
    ) -> Any: ...

    def download_audit_trail(self, envelope_id: str, destination: Any, *, overwrite: bool = False) -> Any: ...


@dataclass
class Outcome:
    """What happened to one envelope: ``archived``, ``skipped`` (complete already), ``not_completed`` or
    ``rejected`` (verification failed, nothing archived as evidence)."""

    envelope_id: str
    state: str
    folder: str
    ok: bool
    report: Report | None = None
    record: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "envelope_id": self.envelope_id,
            "state": self.state,
            "folder": self.folder,
            "verified": self.ok,
            "failed_checks": [c.name for c in self.report.failures] if self.report else [],
        }


def check_extra(extra: Mapping[str, Any] | None, envelope_id: str) -> dict[str, Any]:
    """Extra top-level fields for one envelope's ``evidence.json``; refuses the operator's own keys."""
    if not extra:
        return {}
    if not isinstance(extra, Mapping):
        raise CertyneoValidationError(
            f"record_extra[{envelope_id!r}] is a {type(extra).__name__}; "
            "give a mapping of field to JSON value"
        )
    clash = sorted(set(extra) & RESERVED)
    if clash:
        raise CertyneoValidationError(
            f"record_extra[{envelope_id!r}] would replace {', '.join(clash)} of evidence.json; "
            "rename those fields"
        )
    return dict(extra)


def _read(path: Any) -> bytes:
    with path.open("rb") as handle:
        data: bytes = handle.read()
    return data


def _document_record(source: EvidenceSource, document_id: str) -> dict[str, Any]:
    try:
        document = dict(source.get_document(document_id))
    except CertyneoNotFoundError:
        return {"id": document_id, "filename": None, "sha256": None, "missing": True}
    return {k: document.get(k) for k in ("id", "filename", "sha256", "size", "pages", "createdAt")}


def archive_envelope(
    source: EvidenceSource,
    envelope_id: str,
    destination: Any,
    trust_roots: list[Any],
    mode: str,
    uploaded_sha256: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Outcome:
    """Archive and verify ``envelope_id`` under ``destination`` (``mode``: ``strict`` or ``warn``)."""
    folder = bundle.bundle_folder(destination, envelope_id)
    fields = check_extra(extra, envelope_id)
    complete = bundle.is_complete(folder, accept_unverified=mode == "warn")
    if complete is not None:
        ok = bool((complete.get("verification") or {}).get("ok"))
        return Outcome(envelope_id, "skipped", str(folder), ok, record=complete)
    envelope = dict(source.get_envelope(envelope_id))
    if envelope.get("status") != "COMPLETED":
        return Outcome(
            envelope_id, "not_completed", str(folder), False, record={"status": envelope.get("status")}
        )
    documents: list[Mapping[str, Any]] = [
        _document_record(source, str(d)) for d in envelope.get("documentIds") or []
    ]
    if not hasattr(folder, "fs"):
        folder.mkdir(parents=True, exist_ok=True)
    else:
        with contextlib.suppress(OSError, NotImplementedError):
            folder.mkdir(parents=True, exist_ok=True)
    names = {
        "signed_document": bundle.signed_name(envelope_id),
        "audit_trail": bundle.trail_name(envelope_id),
    }
    source.download_signed_document(envelope_id, folder / names["signed_document"], overwrite=True)
    source.download_audit_trail(envelope_id, folder / names["audit_trail"], overwrite=True)
    contents = {part: _read(folder / name) for part, name in names.items()}
    uploads = {
        str(k): str(v)
        for k, v in (uploaded_sha256 or {}).items()
        if str(k) in envelope.get("documentIds", [])
    }
    report = verify_evidence(
        contents["signed_document"], contents["audit_trail"], envelope, documents, trust_roots, uploads
    )
    record: dict[str, Any] = {
        **fields,
        "format": bundle.FORMAT,
        "envelope_id": envelope_id,
        "subject": envelope.get("subject"),
        "status": envelope.get("status"),
        "completed_at": envelope.get("completedAt"),
        "signers": [
            {"email": r.get("email"), "name": r.get("name"), "signed_at": r.get("signedAt")}
            for r in envelope.get("recipients") or []
            if str(r.get("role", "SIGNER")).upper() == "SIGNER"
        ],
        "envelope": bundle.envelope_snapshot(envelope),
        "documents": documents,
        "uploaded_sha256": uploads,
        "signed_document": bundle.file_entry(folder, names["signed_document"], contents["signed_document"]),
        "audit_trail": bundle.file_entry(folder, names["audit_trail"], contents["audit_trail"]),
        "archived_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "verification": bundle.verification_json(report, mode, trust_roots),
    }
    if report.ok or mode == "warn":
        bundle.write_json_atomically(folder / bundle.EVIDENCE, record)
        bundle.remove(folder / bundle.REJECTED)
        return Outcome(envelope_id, "archived", str(folder), report.ok, report, record)
    bundle.remove(folder / bundle.EVIDENCE)
    bundle.write_json_atomically(folder / bundle.REJECTED, record)
    return Outcome(envelope_id, "rejected", str(folder), False, report, record)
