"""Bulk manifests on disk for the bulk, fault and deployment tests: a CSV of clients, one PDF each."""

from __future__ import annotations

import csv
from pathlib import Path

from airflow_provider_certyneo.emulator.pdf import text_pdf


def write_manifest(
    folder: Path, rows: int, bad: dict[int, dict[str, str]] | None = None, digits: int = 0
) -> Path:
    """A CSV manifest of ``rows`` clients, each with its own PDF under ``pdfs/`` (numbers padded to
    ``digits``); ``bad`` overrides fields of some rows."""
    (folder / "pdfs").mkdir(parents=True, exist_ok=True)
    manifest = folder / "clients.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["row_id", "pdf", "subject", "signer_email", "signer_name"])
        writer.writeheader()
        for i in range(rows):
            n = f"{i:0{digits}}"
            (folder / "pdfs" / f"client-{n}.pdf").write_bytes(text_pdf(f"Contract {n}", [f"Client {n}"]))
            row = {
                "row_id": f"client-{n}",
                "pdf": f"pdfs/client-{n}.pdf",
                "subject": f"Contrat client {n}",
                "signer_email": f"client{n}@example.com",
                "signer_name": f"Client {n}",
            }
            row.update((bad or {}).get(i, {}))
            writer.writerow(row)
    return manifest
