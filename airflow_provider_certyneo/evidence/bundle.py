"""Evidence bundles: one folder per envelope holding the signed PDF, the audit trail and ``evidence.json``,
on a local disk or object storage (``client/files.py`` paths).

``evidence.json`` is written last, atomically (a local file is renamed into place; an object store writes
one object whole): a folder without it is half-written and is archived again; a folder with it, its files
present with the recorded sizes and its verification passed, is complete and skipped. It records what a
later, offline re-check needs (the envelope, its documents, the upload hashes) and the verification result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_certyneo.client.files import as_path, safe_filename, size_of
from airflow_provider_certyneo.evidence.checks import Report
from airflow_provider_certyneo.evidence.verify import verify_evidence

FORMAT = "certyneo-evidence/1"
EVIDENCE = "evidence.json"
REJECTED = "evidence.rejected.json"
# what the bundle keeps of a recipient: never the signUrl (a bearer link to sign)
RECIPIENT_FIELDS = ("id", "email", "name", "role", "order", "status", "signedAt", "declineReason")
ENVELOPE_FIELDS = (
    "id",
    "subject",
    "status",
    "signingOrder",
    "documentIds",
    "createdAt",
    "sentAt",
    "completedAt",
)


def signed_name(envelope_id: str) -> str:
    return safe_filename(f"{envelope_id}-signed-document.pdf")


def trail_name(envelope_id: str) -> str:
    return safe_filename(f"{envelope_id}-audit-trail.pdf")


def bundle_folder(destination: Any, envelope_id: str) -> Any:
    """``<destination>/<envelope id>/`` (the id made safe as a folder name)."""
    return as_path(destination) / safe_filename(envelope_id)


def envelope_snapshot(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope as the bundle keeps it: its fields and recipients, without any signing link."""
    kept = {name: envelope.get(name) for name in ENVELOPE_FIELDS}
    kept["recipients"] = [{k: r.get(k) for k in RECIPIENT_FIELDS} for r in envelope.get("recipients") or []]
    return kept


def read_json(path: Any) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when absent or unreadable."""
    try:
        if not path.exists():
            return None
        with path.open("rb") as handle:
            value = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def write_json_atomically(path: Any, value: Mapping[str, Any]) -> None:
    """Write ``value`` so that a reader sees the old file or the new one, never half of it."""
    data = json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False).encode("utf-8")
    if not hasattr(path, "fs"):
        partial = path.with_name(path.name + ".part")
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        return
    with path.open("wb") as handle:
        handle.write(data)


def remove(path: Any) -> None:
    with contextlib.suppress(FileNotFoundError, OSError):
        if path.exists():
            path.unlink()


def is_complete(folder: Any, accept_unverified: bool) -> dict[str, Any] | None:
    """The bundle's ``evidence.json`` when the bundle is complete (its files there with the sizes it
    recorded, and verified, or archived unverified under ``verify="warn"`` when ``accept_unverified``)."""
    record = read_json(folder / EVIDENCE)
    if record is None or record.get("format") != FORMAT:
        return None
    for part in ("signed_document", "audit_trail"):
        entry = record.get(part) or {}
        path = folder / str(entry.get("file", ""))
        try:
            if not entry.get("file") or not path.exists() or size_of(path) != entry.get("size"):
                return None
        except OSError:
            return None
    verification = record.get("verification") or {}
    if not verification.get("ok") and not accept_unverified:
        return None
    return record


def file_entry(folder: Any, name: str, data: bytes) -> dict[str, Any]:
    return {
        "file": name,
        "path": str(folder / name),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def verification_json(report: Report, mode: str, trust_roots: list[Any]) -> dict[str, Any]:
    """The ``verification`` object: ok, every check, and the signed document's seal at the top level."""
    from airflow_provider_certyneo.evidence.trust import fingerprint

    seal = report.seals.get("signed_document", {})
    return {
        "ok": report.ok,
        "mode": mode,
        "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "certificate_subject": seal.get("certificate_subject"),
        "certificate_sha256": seal.get("certificate_sha256"),
        "signing_time": seal.get("signing_time"),
        "timestamp_time": seal.get("timestamp_time"),
        "audit_trail_seal": report.seals.get("audit_trail"),
        "trust_roots_sha256": [fingerprint(root) for root in trust_roots],
        "revocation": "not checked (no OCSP/CRL is fetched)",
        "checks": [check.to_json() for check in report.checks],
    }


def verify_bundle(folder: Any, trust_roots: list[Any]) -> Report:
    """Re-check an archived bundle offline: its files against the hashes ``evidence.json`` recorded, then
    every seal and audit-trail check against the envelope and documents it recorded."""
    report = Report()
    record = read_json(folder / EVIDENCE)
    if record is None or record.get("format") != FORMAT:
        report.add(
            "bundle.evidence_json", False, f"{folder / EVIDENCE} is missing or is not a {FORMAT} record"
        )
        return report
    report.add("bundle.evidence_json", True, f"{EVIDENCE} of envelope {record.get('envelope_id')}")
    contents: dict[str, bytes] = {}
    for part in ("signed_document", "audit_trail"):
        entry = record.get(part) or {}
        path = folder / str(entry.get("file", ""))
        try:
            with path.open("rb") as handle:
                contents[part] = handle.read()
        except OSError as exc:
            report.add(f"bundle.{part}", False, f"{path} cannot be read ({exc.strerror or exc})")
            contents[part] = b""
            continue
        digest = hashlib.sha256(contents[part]).hexdigest()
        report.add(
            f"bundle.{part}",
            digest == entry.get("sha256"),
            f"{entry.get('file')} as archived"
            if digest == entry.get("sha256")
            else (
                f"{entry.get('file')} changed since it was archived "
                f"(SHA-256 {digest}, recorded {entry.get('sha256')})"
            ),
        )
    envelope = record.get("envelope") or {}
    report.extend(
        verify_evidence(
            contents["signed_document"],
            contents["audit_trail"],
            envelope,
            list(record.get("documents") or []),
            trust_roots,
            record.get("uploaded_sha256") or {},
        )
    )
    return report


def find_bundles(root: Any) -> list[Any]:
    """``root`` itself when it holds ``evidence.json`` (or a rejected record), else every folder below it
    that does, sorted."""
    path = as_path(root)
    if (path / EVIDENCE).exists() or (path / REJECTED).exists():
        return [path]
    found = {p.parent for p in path.rglob(EVIDENCE)} | {p.parent for p in path.rglob(REJECTED)}
    return sorted(found, key=str)
