"""Completed envelopes on the emulator, and ways to make it serve tampered evidence for them: the store keeps
the sealed bytes it serves, so a test can put other bytes in their place, as a compromised download would."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_certyneo.emulator.pdf import text_pdf
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.emulator.store import Store
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

SIGNERS = [
    {"email": "marie.dubois@example.com", "name": "Marie Dubois", "role": "SIGNER"},
    {"email": "rh@example.com", "name": "Ressources humaines", "role": "SIGNER"},
]


@dataclass
class Signed:
    """A COMPLETED envelope: its id, its documents' ids, and the emulator's store (in this process)."""

    envelope_id: str
    document_ids: list[str]
    store: Store

    def genuine(self) -> tuple[bytes, bytes]:
        """The sealed signed PDF and audit trail the emulator serves (sealed now if not yet)."""
        environment = self.store.envelopes[self.envelope_id].environment
        signed = self.store.signed_document(environment, self.envelope_id)[1]
        trail = self.store.audit_trail(environment, self.envelope_id)[1]
        return signed, trail

    def serve(self, signed: bytes | None = None, trail: bytes | None = None) -> None:
        """From now on the emulator serves these bytes for this envelope's downloads."""
        self.genuine()
        entry = self.store.sealed[self.envelope_id]
        if signed is not None:
            entry["signed"] = signed
        if trail is not None:
            entry["trail"] = (entry["trail"][0], trail)


def store_of(emulator: CertyneoEmulator) -> Store:
    store: Store = emulator.server.app.state.runtime.store
    return store


@pytest.fixture
def make_signed(certyneo_emulator: CertyneoEmulator, tmp_path: Path) -> Callable[..., Signed]:
    """Upload, create, send and sign an envelope (two signers) through the API; returns it COMPLETED."""
    counter = iter(range(1_000_000))

    def make(subject: str = "Contrat de travail", documents: int = 1) -> Signed:
        number = next(counter)
        with CertyneoHook() as hook:
            ids = []
            for index in range(documents):
                pdf = tmp_path / f"contract-{number}-{index}.pdf"
                pdf.write_bytes(text_pdf(f"{subject} {number}", [f"Document {index}", "Article 1"]))
                ids.append(hook.upload_document(pdf)["id"])
            envelope = hook.create_envelope(f"{subject} {number}", ids, SIGNERS)
            hook.send_envelope(envelope["id"])
        certyneo_emulator.control.sign(envelope["id"])
        return Signed(envelope["id"], ids, store_of(certyneo_emulator))

    return make


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    return tmp_path / "evidence"


def run_operator(**kwargs: Any) -> Any:
    """Run the operator's execute() as a task would (no DAG run needed: it reads nothing of the context)."""
    from airflow_provider_certyneo.operators.evidence import CertyneoArchiveEvidenceOperator

    operator = CertyneoArchiveEvidenceOperator(task_id="archive_evidence", **kwargs)
    try:
        return operator.execute({})
    finally:
        operator.hook.close()


def append_page(data: bytes) -> bytes:
    """``data`` with a page added by an incremental update, after the seal (as an editor saving would)."""
    from pypdf import PdfWriter

    writer = PdfWriter(io.BytesIO(data), incremental=True)
    writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
