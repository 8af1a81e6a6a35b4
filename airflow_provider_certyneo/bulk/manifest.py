"""Contracts to send in bulk, from a list (XCom) or a manifest file (CSV or JSON lines, local or object
storage), each checked on its own so that one bad row never stops the others."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_certyneo.client.calls import envelope_body, envelope_identity
from airflow_provider_certyneo.client.files import as_path
from airflow_provider_certyneo.exceptions import CertyneoValidationError

MAX_MANIFEST_BYTES = 50 * 1024 * 1024


@dataclass
class Contract:
    """One row: ``row`` names it in reports and in the journal (the ``row_id`` column, else its line)."""

    row: str
    pdf: Any = None
    body: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def key(self) -> tuple[str, tuple[str, ...]]:
        """What identifies the envelope of this row on the server: its subject and recipients."""
        return envelope_identity(self.body)


def _recipients(raw: dict[str, Any]) -> Any:
    recipients = raw.get("recipients")
    if isinstance(recipients, str) and recipients.strip():
        try:
            return json.loads(recipients)
        except ValueError as exc:
            raise CertyneoValidationError(f"recipients is not valid JSON: {exc}") from None
    if recipients:
        return recipients
    if raw.get("signer_email") or raw.get("signer_name"):
        return [
            {"email": raw.get("signer_email") or "", "name": raw.get("signer_name") or "", "role": "SIGNER"}
        ]
    return []


def contract_from(row: str, raw: Any, base: Any = None) -> Contract:
    """Check one row; a bad row becomes a Contract with ``error`` set, naming the field and the fix."""
    if not isinstance(raw, dict):
        return Contract(
            row, error=f"expected a mapping with pdf, subject and recipients, got {type(raw).__name__}"
        )
    try:
        pdf = raw.get("pdf") or raw.get("document")
        if not pdf:
            raise CertyneoValidationError("pdf is empty: give the path or URL of the contract's PDF")
        relative = base is not None and not str(pdf).startswith("/") and "://" not in str(pdf)
        if relative and ".." in str(pdf).replace("\\", "/").split("/"):
            raise CertyneoValidationError(f"pdf {pdf!r} leaves the manifest's folder: use a path inside it")
        path = base / str(pdf) if relative else as_path(pdf)
        body = envelope_body(
            raw.get("subject"),
            ["doc_pending"],
            _recipients(raw),
            raw.get("message") or None,
            raw.get("signing_order") or None,
        )
    except CertyneoValidationError as exc:
        return Contract(row, error=exc.server_message)
    return Contract(row, pdf=path, body=body)


def contracts_from_list(rows: Iterable[Any]) -> list[Contract]:
    contracts = []
    for index, raw in enumerate(rows, start=1):
        name = str(raw.get("row_id") or index) if isinstance(raw, dict) else str(index)
        contracts.append(contract_from(name, raw))
    return unique_rows(contracts)


def read_manifest(location: Any) -> list[Contract]:
    """Rows of a CSV (header: pdf, subject, message, signing_order, and recipients as JSON or
    signer_email + signer_name) or JSON-lines manifest; relative PDF paths are read from its folder."""
    return load_manifest(location)[0]


def load_manifest(location: Any) -> tuple[list[Contract], str]:
    """:func:`read_manifest`, and the SHA-256 of the very bytes it parsed (a preview's fingerprint)."""
    path = as_path(location)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise CertyneoValidationError(f"manifest {path} cannot be read: {exc}") from exc
    if len(data) > MAX_MANIFEST_BYTES:
        raise CertyneoValidationError(f"manifest {path} is over 50 MiB: split it into several bulk tasks")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CertyneoValidationError(
            f"manifest {path} is not UTF-8 (bad byte at line {line}): save it as UTF-8"
        ) from None
    base = path.parent
    name = str(path).lower()
    digest = hashlib.sha256(data).hexdigest()
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return unique_rows(_json_lines(text, base)), digest
    return unique_rows(_csv_rows(text, base)), digest


def _json_lines(text: str, base: Any) -> Iterator[Contract]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError as exc:
            yield Contract(f"line {number}", error=f"not valid JSON: {exc}")
            continue
        name = str(raw.get("row_id") or f"line {number}") if isinstance(raw, dict) else f"line {number}"
        yield contract_from(name, raw, base)


def _csv_rows(text: str, base: Any) -> Iterator[Contract]:
    reader = csv.DictReader(io.StringIO(text))
    missing = {"pdf", "subject"} - set(reader.fieldnames or [])
    if missing:
        raise CertyneoValidationError(
            f"manifest has no {', '.join(sorted(missing))} column "
            f"(columns: {', '.join(reader.fieldnames or [])})"
        )
    for raw in reader:
        number = reader.line_num
        yield contract_from(str(raw.get("row_id") or f"line {number}"), raw, base)


def unique_rows(contracts: Iterable[Contract]) -> list[Contract]:
    """Two rows with the same name, or the same subject and recipients, would be indistinguishable on a
    retry: the later one is refused."""
    out: list[Contract] = []
    names: set[str] = set()
    keys: dict[tuple[str, tuple[str, ...]], str] = {}
    for contract in contracts:
        if contract.row in names:
            contract = Contract(contract.row, error=f"row id {contract.row!r} appears twice in the manifest")
        elif contract.error is None:
            first = keys.setdefault(contract.key(), contract.row)
            if first != contract.row:
                contract = Contract(
                    contract.row,
                    error=f"same subject and recipients as row {first!r}: give each contract its own subject",
                )
        names.add(contract.row)
        out.append(contract)
    return out
