"""PAdES checks of one sealed PDF, as the contract says Certyneo seals: one CMS signature (SHA-256) in a
signature field, intact, covering the whole file (nothing appended after it), by a certificate with the
non-repudiation usage that chains to the trust roots, with a signature timestamp that does too.

Offline: no OCSP or CRL is fetched (``allow_fetching=False``) and revocation is not checked (soft-fail with
no revocation information): what a chain to a test root, or to a qualified root given by the user, proves.
A PDF that cannot be read, or has no signature, is a failed check, never a crash.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from airflow_provider_certyneo.evidence.checks import Report
from airflow_provider_certyneo.evidence.trust import fingerprint

T = TypeVar("T")


class _QuietPathFailures(logging.Filter):
    """pyHanko logs a traceback when a chain does not reach the trust roots; the ``.trusted`` check says it
    in one line, so the task log need not hold the traceback too."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to build path")


logging.getLogger("pyhanko.sign.validation.generic_cms").addFilter(_QuietPathFailures())


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` from sync code, in a thread of its own when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, re-raised there
            box["error"] = exc

    thread = threading.Thread(target=work, name="certyneo-evidence")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def open_pdf(data: bytes) -> Any:
    """A pyHanko reader over ``data``; raises ``ValueError`` when the bytes are not a readable PDF."""
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader

    if not data.startswith(b"%PDF-"):
        raise ValueError("the file does not start with %PDF-")
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        reader.root  # noqa: B018 - parse the catalog now
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    return reader


def _moment(value: Any) -> str | None:
    if value is None:
        return None
    text: str = value.isoformat().replace("+00:00", "Z")
    return text


def check_seal(data: bytes, what: str, trust_roots: list[Any], report: Report) -> Any:
    """Add the checks ``<what>.sealed``, ``.intact``, ``.covers_whole_file``, ``.trusted``,
    ``.seal_certificate``, ``.digest``, ``.signing_time`` and ``.timestamp`` to ``report`` and record the
    seal (certificate subject and fingerprint, signing and timestamp times) in ``report.seals[what]``.
    Returns the reader (for the attachment of an audit trail), or None when the PDF is unreadable."""
    try:
        reader = open_pdf(data)
    except ValueError as exc:
        report.add(f"{what}.sealed", False, f"cannot be read as a PDF: {exc}")
        return None
    try:
        signatures = list(reader.embedded_signatures)
    except Exception as exc:  # noqa: BLE001 - a malformed signature field is a failed check, not a crash
        report.add(
            f"{what}.sealed", False, f"its signature fields cannot be read ({type(exc).__name__}: {exc})"
        )
        return reader
    if not signatures:
        report.add(f"{what}.sealed", False, "not sealed: the PDF carries no PAdES signature")
        return reader
    signature = signatures[-1]
    report.add(
        f"{what}.sealed",
        True,
        f"signature field {signature.field_name!r}"
        + (f" (the last of {len(signatures)})" if len(signatures) > 1 else ""),
    )
    try:
        status = run_sync(_validate(signature, trust_roots))
    except Exception as exc:  # noqa: BLE001 - pyHanko raises many kinds on a broken signature
        report.add(
            f"{what}.intact", False, f"the signature cannot be validated ({type(exc).__name__}: {exc})"
        )
        return reader
    _record(status, signature, data, what, trust_roots, report)
    return reader


async def _validate(signature: Any, trust_roots: list[Any]) -> Any:
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    context = ValidationContext(
        trust_roots=list(trust_roots), allow_fetching=False, revocation_mode="soft-fail"
    )
    return await async_validate_pdf_signature(signature, context, skip_diff=True)


def _record(
    status: Any, signature: Any, data: bytes, what: str, trust_roots: list[Any], report: Report
) -> None:
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    report.add(
        f"{what}.intact",
        status.intact and status.valid,
        "the signed bytes and the signature match"
        if status.intact and status.valid
        else (
            "the signed bytes were changed after sealing (their digest differs from the signed one)"
            if not status.intact
            else "the CMS signature value is not valid for the signed attributes"
        ),
    )
    _, _, second, length = (int(x) for x in signature.byte_range)
    signed_end = second + length
    whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE and signed_end == len(data)
    if whole:
        coverage = f"the signature covers all {len(data)} bytes"
    elif signed_end < len(data):
        coverage = (
            f"{len(data) - signed_end} bytes were appended after the seal (an incremental update: the "
            "archived file is not the one sealed)"
        )
    else:
        coverage = f"the signature does not cover the whole file (coverage {status.coverage})"
    report.add(f"{what}.covers_whole_file", whole, coverage)

    cert = status.signing_cert
    subject = cert.subject.human_friendly
    issuer = cert.issuer.human_friendly
    if not trust_roots:
        trusted, detail = False, "no trust roots are configured, so the seal's origin is unknown"
    elif status.trusted:
        trusted, detail = True, f"{subject!r} chains to the trust root {issuer!r}"
    else:
        trusted = False
        detail = (
            f"the seal's certificate {subject!r} (issuer {issuer!r}) does not chain to the configured trust "
            f"roots ({status.trust_problem_indic})"
        )
    report.add(f"{what}.trusted", trusted, detail)
    usages = set(cert.key_usage_value.native) if cert.key_usage_value is not None else set()
    report.add(
        f"{what}.seal_certificate",
        "non_repudiation" in usages,
        "non-repudiation key usage"
        if "non_repudiation" in usages
        else f"the certificate lacks the non-repudiation key usage (has {sorted(usages) or 'none'})",
    )
    report.add(
        f"{what}.digest",
        status.md_algorithm == "sha256",
        f"digest {status.md_algorithm}" + ("" if status.md_algorithm == "sha256" else ", expected sha256"),
    )
    signing_time = status.signer_reported_dt
    report.add(
        f"{what}.signing_time",
        signing_time is not None,
        f"signed at {_moment(signing_time)}" if signing_time else "the seal carries no signing time",
    )
    stamp = status.timestamp_validity
    stamp_ok = stamp is not None and stamp.intact and stamp.valid and stamp.trusted
    if stamp is None:
        stamp_detail = "the seal carries no signature timestamp"
    elif stamp_ok:
        stamp_detail = (
            f"timestamped at {_moment(stamp.timestamp)} by {stamp.signing_cert.subject.human_friendly!r}"
        )
    else:
        stamp_detail = f"the signature timestamp of {_moment(stamp.timestamp)} is " + (
            "not intact" if not (stamp.intact and stamp.valid) else "not from a trusted timestamp authority"
        )
    report.add(f"{what}.timestamp", stamp_ok, stamp_detail)
    report.seals[what] = {
        "certificate_subject": subject,
        "certificate_issuer": issuer,
        "certificate_sha256": fingerprint(cert),
        "signing_time": _moment(signing_time),
        "timestamp_time": _moment(stamp.timestamp) if stamp is not None else None,
    }


def _deref(value: Any) -> Any:
    return value.get_object() if hasattr(value, "get_object") else value


def _get(node: Any, key: str) -> Any:
    node = _deref(node)
    if node is None or not hasattr(node, "get"):
        return None
    return _deref(node.get(key))


def attachment(reader: Any, name: str) -> bytes | None:
    """The bytes of the file attached under ``name`` (document-level embedded files), or None."""
    try:
        return _find(_get(_get(reader.root, "/Names"), "/EmbeddedFiles"), name, 0)
    except (KeyError, TypeError, AttributeError, ValueError):
        return None


def _find(node: Any, name: str, depth: int) -> bytes | None:
    if node is None or depth > 16:
        return None
    entries = _get(node, "/Names") or []
    for index in range(0, len(entries) - 1, 2):
        spec = _deref(entries[index + 1])
        labels = {str(_deref(entries[index]))} | {str(_get(spec, k)) for k in ("/UF", "/F")}
        if name in labels:
            stream = _get(_get(spec, "/EF"), "/F")
            if stream is not None:
                data: bytes = stream.data
                return data
    for kid in _get(node, "/Kids") or []:
        found = _find(kid, name, depth + 1)
        if found is not None:
            return found
    return None
