"""CertyneoUploadDocumentOperator and the two download operators, ``execute`` called directly."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_certyneo import xcom
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.exceptions import CertyneoError, CertyneoValidationError
from airflow_provider_certyneo.operators.document import (
    CertyneoDownloadAuditTrailOperator,
    CertyneoDownloadSignedDocumentOperator,
    CertyneoUploadDocumentOperator,
)
from tests.unit.conftest import FakeTaskInstance, make_context, run


def test_upload_returns_the_document_id_and_pushes_the_record(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, ti: FakeTaskInstance, context: Any
) -> None:
    operator = CertyneoUploadDocumentOperator(task_id="upload", source=str(pdf_file), filename="contrat.pdf")
    document_id = run(operator, context)
    record = ti.pushed(xcom.DOCUMENT)
    assert record["id"] == document_id
    assert record["filename"] == "contrat.pdf"
    assert record["sha256"] == hashlib.sha256(pdf_file.read_bytes()).hexdigest()
    assert certyneo_emulator.control.counters()["documents"] == 1


def test_a_retried_upload_reuses_what_the_earlier_try_uploaded(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path
) -> None:
    run_started = datetime.now(timezone.utc) - timedelta(minutes=1)
    first = FakeTaskInstance(task_id="upload")
    first_id = run(CertyneoUploadDocumentOperator(task_id="upload", source=pdf_file), make_context(first))
    retry = FakeTaskInstance(task_id="upload", run_id=first.run_id, try_number=2)
    again = run(
        CertyneoUploadDocumentOperator(task_id="upload", source=pdf_file), make_context(retry, run_started)
    )
    assert again == first_id
    assert certyneo_emulator.control.counters()["documents"] == 1


def test_a_first_try_uploads_even_when_the_same_file_is_there(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path
) -> None:
    """Reuse is for retries only: two first tries (two runs) make two documents."""
    ids = set()
    for _ in range(2):
        operator = CertyneoUploadDocumentOperator(task_id="upload", source=pdf_file)
        ids.add(run(operator, make_context(FakeTaskInstance())))
    assert len(ids) == 2
    assert certyneo_emulator.control.counters()["documents"] == 2


def test_a_file_that_is_not_a_pdf_fails_before_any_request(
    certyneo_emulator: CertyneoEmulator, tmp_path: Path, context: Any
) -> None:
    text = tmp_path / "notes.pdf"
    text.write_text("not a PDF")
    with pytest.raises(CertyneoValidationError):
        run(CertyneoUploadDocumentOperator(task_id="upload", source=text), context)
    assert certyneo_emulator.control.counters()["requestsTotal"] == 0


def test_download_signed_document_into_a_folder(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], tmp_path: Path, context: Any
) -> None:
    envelope_id = sent()
    certyneo_emulator.control.sign(envelope_id)
    folder = tmp_path / "out"
    folder.mkdir()
    operator = CertyneoDownloadSignedDocumentOperator(
        task_id="download", envelope_id=envelope_id, destination=str(folder)
    )
    result = run(operator, context)
    path = Path(result["path"])
    assert path == folder / f"{envelope_id}-signed-document.pdf"
    content = path.read_bytes()
    assert content.startswith(b"%PDF")
    assert result["size"] == len(content)
    assert result["sha256"] == hashlib.sha256(content).hexdigest()


def test_download_refuses_to_overwrite_unless_asked(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], tmp_path: Path, context: Any
) -> None:
    envelope_id = sent()
    certyneo_emulator.control.sign(envelope_id)
    target = tmp_path / "signed.pdf"
    target.write_bytes(b"keep me")
    with pytest.raises(CertyneoError):
        run(
            CertyneoDownloadSignedDocumentOperator(task_id="d", envelope_id=envelope_id, destination=target),
            context,
        )
    assert target.read_bytes() == b"keep me"
    operator = CertyneoDownloadSignedDocumentOperator(
        task_id="d", envelope_id=envelope_id, destination=target, overwrite=True
    )
    assert run(operator, context)["path"] == str(target)
    assert target.read_bytes().startswith(b"%PDF")


def test_the_signed_document_of_an_unsigned_envelope_is_refused(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], tmp_path: Path, context: Any
) -> None:
    operator = CertyneoDownloadSignedDocumentOperator(
        task_id="d", envelope_id=sent(), destination=tmp_path / "signed.pdf"
    )
    with pytest.raises(CertyneoError):
        run(operator, context)
    assert not (tmp_path / "signed.pdf").exists()


def test_download_audit_trail_of_a_sent_envelope(
    certyneo_emulator: CertyneoEmulator, sent: Callable[..., str], tmp_path: Path, context: Any
) -> None:
    envelope_id = sent()
    operator = CertyneoDownloadAuditTrailOperator(
        task_id="trail", envelope_id=envelope_id, destination=f"{tmp_path}/"
    )
    result = run(operator, context)
    path = Path(result["path"])
    assert path == tmp_path / f"{envelope_id}-audit-trail.pdf"
    assert path.read_bytes().startswith(b"%PDF")
    assert result["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
