"""What a bulk preview saw, as digests: the SHA-256 of the manifest's bytes (or of the rows given as a
list) and of every PDF its rows name. A send given the preview's fingerprint recomputes it before any
request and refuses when anything differs, so an approved run sends exactly what the approver was shown.

The fingerprint does not depend on the journal (which PDFs still need uploading), so a retried send that
resumes half-way compares the same digests as its first try.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airflow_provider_certyneo.bulk.manifest import Contract
from airflow_provider_certyneo.client.files import InspectedPdf, inspect_pdf
from airflow_provider_certyneo.exceptions import CertyneoValidationError

# PDFs read at once (object storage answers slowly; local disks do not mind)
INSPECT_WORKERS = 8
SHOWN_DIFFERENCES = 10

Inspection = InspectedPdf | CertyneoValidationError


def rows_digest(rows: Iterable[Any]) -> str:
    """The SHA-256 of rows given as a list (``contracts=``), in a canonical JSON form."""
    text = json.dumps(list(rows), sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def inspect_all(contracts: Iterable[Contract]) -> dict[str, Inspection]:
    """Every distinct PDF of the valid rows, checked and hashed by the real run's own check
    (:func:`~airflow_provider_certyneo.client.files.inspect_pdf`: exists, is a PDF, at most 25 MiB), by its
    path as text; a refused one maps to the error naming it."""
    sources: dict[str, Any] = {}
    for contract in contracts:
        if contract.error is None and contract.pdf is not None:
            sources.setdefault(str(contract.pdf), contract.pdf)

    def one(source: Any) -> Inspection:
        try:
            return inspect_pdf(source)
        except CertyneoValidationError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=INSPECT_WORKERS) as pool:
        return dict(zip(sources, pool.map(one, sources.values()), strict=True))


def fingerprint(source_sha256: str, inspected: dict[str, Inspection]) -> dict[str, Any]:
    """``{"sha256": …, "manifest_sha256": …, "pdfs": {path: sha256 or "unreadable: why"}}``; ``sha256``
    covers the other two and is what a template can carry on its own."""
    pdfs = {
        name: found.sha256 if isinstance(found, InspectedPdf) else f"unreadable: {found.server_message}"
        for name, found in sorted(inspected.items())
    }
    parts = {"manifest_sha256": source_sha256, "pdfs": pdfs}
    overall = hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return {"sha256": overall, **parts}


def differences(expected: Any, actual: dict[str, Any]) -> list[str]:
    """What changed between the preview's fingerprint (the whole mapping, or its ``sha256`` alone) and
    ``actual``, one line per change; empty when nothing did."""
    if isinstance(expected, str):
        digest = expected.strip()
        if digest == actual["sha256"]:
            return []
        return [
            f"the manifest or its PDFs changed: fingerprint {digest[:12] or '(empty)'}… at the preview, "
            f"{actual['sha256'][:12]}… now"
        ]
    if not isinstance(expected, dict) or "sha256" not in expected:
        raise CertyneoValidationError(
            f"expected_fingerprint is {type(expected).__name__}: pass the preview's 'fingerprint' XCom (the "
            "mapping, or its 'sha256')"
        )
    if expected["sha256"] == actual["sha256"]:
        return []
    changes = []
    if expected.get("manifest_sha256") != actual["manifest_sha256"]:
        changes.append("the manifest's content changed")
    before: dict[str, str] = expected.get("pdfs") or {}
    now: dict[str, str] = actual["pdfs"]
    for name in sorted(set(before) | set(now)):
        if name not in now:
            changes.append(f"{name} is no longer in the manifest")
        elif name not in before:
            changes.append(f"{name} was not in the previewed manifest")
        elif before[name] != now[name]:
            changes.append(f"{name} changed ({before[name][:12]}… at the preview, {now[name][:12]}… now)")
    if len(changes) > SHOWN_DIFFERENCES:
        changes[SHOWN_DIFFERENCES:] = [f"… and {len(changes) - SHOWN_DIFFERENCES} more"]
    return changes or ["the fingerprint differs (a different preview's?)"]
