"""Bulk manifests on disk for the bulk, fault and deployment tests: a CSV of clients, one PDF each."""

from __future__ import annotations

import csv
from pathlib import Path

from airflow_provider_certyneo.emulator.pdf import text_pdf


def write_manifest(
    folder: Path,
    rows: int,
    bad: dict[int, dict[str, str]] | None = None,
    digits: int = 0,
    shared_pdf: bool = False,
    subject: str = "Contrat client",
) -> Path:
    """A CSV manifest of ``rows`` clients, each with its own PDF under ``pdfs/`` (numbers padded to
    ``digits``), or all with one (``shared_pdf``); ``bad`` overrides fields of some rows."""
    (folder / "pdfs").mkdir(parents=True, exist_ok=True)
    manifest = folder / "clients.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["row_id", "pdf", "subject", "signer_email", "signer_name"])
        writer.writeheader()
        for i in range(rows):
            n = f"{i:0{digits}}"
            pdf = "pdfs/contract.pdf" if shared_pdf else f"pdfs/client-{n}.pdf"
            if not (folder / pdf).exists():
                (folder / pdf).write_bytes(text_pdf(f"Contract {n}", [f"Client {n}"]))
            row = {
                "row_id": f"client-{n}",
                "pdf": pdf,
                "subject": f"{subject} {n}",
                "signer_email": f"client{n}@example.com",
                "signer_name": f"Client {n}",
            }
            row.update((bad or {}).get(i, {}))
            writer.writerow(row)
    return manifest
