"""The bad-input matrix: every row fails with an error whose text names the problem, before any request
where the problem can be seen on this side (the emulator's request counter says so)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.exceptions import CertyneoError
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

SIGNER = {"email": "marie@example.com", "name": "Marie Dubois"}
LIVE_KEY = "sk_live_" + "l" * 30


def big_file(path: Path, size: int, head: bytes) -> Path:
    with path.open("wb") as handle:
        handle.write(head)
        handle.truncate(size)
    return path


def envelope(hook: CertyneoHook, tmp: Path, **overrides: Any) -> Any:
    args: dict[str, Any] = {
        "subject": "Contrat",
        "document_ids": ["doc_1"],
        "recipients": [SIGNER],
        **overrides,
    }
    return hook.create_envelope(**args)


def voided_then_sent(hook: CertyneoHook, tmp: Path, *_: Any) -> Any:
    pdf = tmp / "c.pdf"
    from airflow_provider_certyneo.emulator.pdf import text_pdf

    pdf.write_bytes(text_pdf("C", ["x"]))
    created = hook.create_envelope("Contrat", [hook.upload_document(pdf)["id"]], [SIGNER])
    hook.send_envelope(created["id"])
    hook.void_envelope(created["id"])
    return hook.send_envelope(created["id"])


def manifest(tmp: Path, content: bytes, name: str = "m.csv") -> Any:
    from airflow_provider_certyneo.bulk.manifest import read_manifest

    path = tmp / name
    path.write_bytes(content)
    rows = read_manifest(path)
    errors = [row.error for row in rows if row.error]
    if errors:
        raise CertyneoError("; ".join(errors))
    return rows


def connection(monkeypatch: pytest.MonkeyPatch, emulator: CertyneoEmulator, **fields: Any) -> Any:
    monkeypatch.setenv("AIRFLOW_CONN_CERTYNEO_MATRIX", json.dumps({"conn_type": "certyneo", **fields}))
    return CertyneoHook("certyneo_matrix").settings


Case = Callable[[CertyneoHook, Path, pytest.MonkeyPatch, CertyneoEmulator], Any]
MATRIX: list[tuple[str, Case, str, int]] = [
    (
        "not a PDF",
        lambda h, t, m, e: h.upload_document(big_file(t / "x.pdf", 100, b"PK\x03\x04")),
        "is not a PDF",
        0,
    ),
    (
        "empty file",
        lambda h, t, m, e: h.upload_document(big_file(t / "x.pdf", 0, b"")),
        "is empty (0 bytes)",
        0,
    ),
    (
        "over 25 MiB",
        lambda h, t, m, e: h.upload_document(big_file(t / "x.pdf", 26 * 2**20, b"%PDF-1.7")),
        "Certyneo accepts PDFs of at most 25 MiB",
        0,
    ),
    (
        "malformed e-mail",
        lambda h, t, m, e: envelope(h, t, recipients=[{**SIGNER, "email": "marie@"}]),
        "recipients[0].email 'marie@' is not a valid e-mail address",
        0,
    ),
    (
        "duplicate e-mails",
        lambda h, t, m, e: envelope(h, t, recipients=[SIGNER, {**SIGNER, "name": "Other"}]),
        "is listed twice",
        0,
    ),
    ("zero recipients", lambda h, t, m, e: envelope(h, t, recipients=[]), "recipients is empty", 0),
    (
        "51 recipients",
        lambda h, t, m, e: envelope(
            h, t, recipients=[{"email": f"r{i}@example.com", "name": "R"} for i in range(51)]
        ),
        "recipients holds 51 entries: an envelope takes at most 50",
        0,
    ),
    (
        "missing signer",
        lambda h, t, m, e: envelope(h, t, recipients=[{**SIGNER, "role": "CC"}]),
        "recipients has no SIGNER",
        0,
    ),
    ("subject empty", lambda h, t, m, e: envelope(h, t, subject=""), "subject is empty", 0),
    (
        "subject over 200 chars",
        lambda h, t, m, e: envelope(h, t, subject="x" * 201),
        "subject is 201 characters long",
        0,
    ),
    (
        "unknown document id",
        lambda h, t, m, e: envelope(h, t, document_ids=["doc_unknown"]),
        "document 'doc_unknown' does not exist",
        1,
    ),
    (
        "unknown envelope id",
        lambda h, t, m, e: h.get_envelope("env_unknown"),
        "envelope 'env_unknown' does not exist",
        1,
    ),
    (
        "envelope in the wrong state",
        voided_then_sent,
        "only a DRAFT envelope can be sent; this one is VOIDED",
        5,
    ),
    (
        "live key in a connection marked test",
        lambda h, t, m, e: connection(
            m, e, password=LIVE_KEY, host=e.base_url, extra={"environment": "test"}
        ),
        "marked environment='test' but holds a live key",
        0,
    ),
    (
        "test key in a connection marked live",
        lambda h, t, m, e: connection(m, e, password=e.key, host=e.base_url, extra={"environment": "live"}),
        "marked environment='live' but holds a test key",
        0,
    ),
    (
        "base URL without https",
        lambda h, t, m, e: connection(m, e, password=e.key, host="http://certyneo.com"),
        "uses plain http; use https",
        0,
    ),
    (
        "webhook over plain http",
        lambda h, t, m, e: h.create_webhook(
            "http://airflow.example.com/certyneo/webhooks/x", ["envelope.completed"]
        ),
        "must be an absolute https:// URL (plain http:// only to localhost",
        0,
    ),
    (
        "webhook url without a host",
        lambda h, t, m, e: h.create_webhook("https:///certyneo/webhooks/x", ["envelope.completed"]),
        "must be an absolute https:// URL",
        0,
    ),
    (
        "non-UTF-8 manifest",
        lambda h, t, m, e: manifest(t, "pdf,subject\nx.pdf,Café\n".encode("cp1252")),
        "is not UTF-8 (bad byte at line 2)",
        0,
    ),
    (
        "very large manifest",
        lambda h, t, m, e: manifest(t, b"pdf,subject\n" + b"x" * (51 * 2**20)),
        "is over 50 MiB",
        0,
    ),
    (
        "hostile file name in a manifest",
        lambda h, t, m, e: manifest(
            t, b"pdf,subject,signer_email,signer_name\n../../../etc/passwd,S,a@example.com,A\n"
        ),
        "leaves the manifest's folder",
        0,
    ),
    (
        "hostile envelope id in a download",
        lambda h, t, m, e: h.download_audit_trail("../../etc/passwd", t),
        "404 not_found",
        1,
    ),
]


@pytest.mark.parametrize(("row", "case", "fragment", "requests"), MATRIX, ids=[row[0] for row in MATRIX])
def test_bad_input(
    certyneo_emulator: CertyneoEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    row: str,
    case: Case,
    fragment: str,
    requests: int,
) -> None:
    with CertyneoHook(backoff_base=0.01) as hook, pytest.raises(CertyneoError) as caught:
        case(hook, tmp_path, monkeypatch, certyneo_emulator)
    assert fragment in str(caught.value), f"{row}: {caught.value}"
    assert certyneo_emulator.control.counters()["requestsTotal"] == requests, row
    assert certyneo_emulator.key not in str(caught.value)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.suffix == ".pdf" and "audit" in p.name) == []
