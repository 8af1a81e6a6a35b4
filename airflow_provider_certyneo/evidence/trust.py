"""Trust roots for seals: PEM text, or paths of PEM files (or folders of them), read into certificates."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from airflow_provider_certyneo.exceptions import CertyneoConfigError

PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
HOW = (
    "give the PEM text of Certyneo's root certificate (for the emulator: GET /_emulator/trust-root) or the "
    "path of a PEM file"
)


def _texts(source: Any, origin: str) -> list[str]:
    if isinstance(source, (list, tuple)):
        return [text for item in source for text in _texts(item, origin)]
    if isinstance(source, bytes):
        source = source.decode("ascii", "replace")
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise CertyneoConfigError(f"{origin} is a {type(source).__name__}; {HOW}")
    text = source.strip()
    if not text:
        return []
    if PEM_BEGIN in text:
        return [text]
    path = Path(text).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".pem", ".crt", ".cer"))
        return [p.read_text(encoding="ascii", errors="replace") for p in files]
    try:
        return [path.read_text(encoding="ascii", errors="replace")]
    except OSError as exc:
        raise CertyneoConfigError(
            f"{origin}: {text[:80]!r} is neither PEM text nor a readable file ({exc.strerror}); {HOW}"
        ) from None


def load_trust_roots(sources: Iterable[tuple[Any, str]]) -> list[Any]:
    """Certificates (asn1crypto) from ``(value, where it came from)`` pairs; the origin names the field to
    fix in an error. Empty values are skipped: no roots at all is the caller's to report."""
    from asn1crypto import pem, x509

    roots: list[Any] = []
    for value, origin in sources:
        if value is None:
            continue
        for text in _texts(value, origin):
            try:
                blocks = list(pem.unarmor(text.encode("ascii", "replace"), multiple=True))
            except (ValueError, TypeError) as exc:
                raise CertyneoConfigError(f"{origin} holds unreadable PEM ({exc}); {HOW}") from None
            if not blocks:
                raise CertyneoConfigError(f"{origin} holds no PEM certificate; {HOW}")
            for kind, _, der in blocks:
                if kind != "CERTIFICATE":
                    raise CertyneoConfigError(f"{origin} holds a PEM {kind!r}, not a CERTIFICATE; {HOW}")
                try:
                    roots.append(x509.Certificate.load(der))
                    roots[-1].native  # noqa: B018 - parse now, fail here rather than mid-validation
                except ValueError as exc:
                    raise CertyneoConfigError(
                        f"{origin} holds an unreadable certificate ({exc}); {HOW}"
                    ) from None
    return roots


def fingerprint(cert: Any) -> str:
    """SHA-256 of the certificate's DER, lowercase hex."""
    import hashlib

    return hashlib.sha256(cert.dump()).hexdigest()
