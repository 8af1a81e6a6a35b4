"""The bulk preview (``dry_run=True``) and the fingerprint check of the send that follows it, ``execute``
called directly against the emulator: what it reports, and that it asks the server nothing (by the
server's own request log)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_certyneo import xcom
from airflow_provider_certyneo.emulator.pdf import text_pdf
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.exceptions import CertyneoValidationError
from airflow_provider_certyneo.operators.bulk import CertyneoBulkSendOperator
from tests.support.manifests import write_manifest
from tests.unit.conftest import FakeTaskInstance, run

MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def operator(manifest: Path, journal: Path, **kwargs: Any) -> CertyneoBulkSendOperator:
    task_id = "preview" if kwargs.get("dry_run") else "bulk_send"
    return CertyneoBulkSendOperator(task_id=task_id, manifest=str(manifest), journal=str(journal), **kwargs)


def test_a_preview_names_each_bad_row_and_asks_the_server_nothing(
    certyneo_emulator: CertyneoEmulator, tmp_path: Path, ti: FakeTaskInstance, context: Any
) -> None:
    manifest = write_manifest(
        tmp_path,
        8,
        bad={
            1: {"pdf": "pdfs/missing.pdf"},
            2: {"signer_email": "not-an-email"},
            4: {"subject": ""},
            6: {"subject": "Contrat client 0", "signer_email": "client0@example.com"},  # a duplicate of row 0
        },
    )
    (tmp_path / "pdfs" / "client-7.pdf").write_text("not a pdf at all")
    with pytest.raises(CertyneoValidationError) as failure:
        run(operator(manifest, tmp_path / "journal.jsonl", dry_run=True), context)

    assert not failure.value.retryable, "a bad manifest is not retried"
    message = str(failure.value)
    assert "5 of 8 rows would not be sent: client-1, client-2, client-4, client-6, client-7" in message
    assert certyneo_emulator.control.requests() == [], "a preview of a fresh manifest makes no request"
    assert certyneo_emulator.control.counters()["requestsTotal"] == 0
    assert not (tmp_path / "journal.jsonl").exists(), "a preview writes no journal"

    fingerprint = ti.pushed(xcom.FINGERPRINT)
    assert len(fingerprint["pdfs"]) == 5, "every distinct PDF of a well-formed row is fingerprinted"
    summary = ti.pushed(xcom.PREVIEW)
    assert (summary["contracts"], summary["to_send"], summary["distinct_pdfs"]) == (8, 3, 3)
    assert summary["requests"] == {"uploads": 3, "creates": 3, "sends": 3, "lookups": 0, "total": 9}
    problems = {p["row"]: p for p in summary["problems"]}
    assert set(problems) == {"client-1", "client-2", "client-4", "client-6", "client-7"}
    assert problems["client-1"]["field"] == "pdf"
    assert "missing.pdf does not exist" in problems["client-1"]["error"]
    assert "pdf column" in problems["client-1"]["fix"]
    assert problems["client-2"]["field"] == "recipients[0].email"
    assert "'not-an-email' is not a valid e-mail address" in problems["client-2"]["error"]
    assert problems["client-2"]["fix"] == "correct the e-mail address in the manifest"
    assert problems["client-4"]["field"] == "subject"
    assert problems["client-6"]["field"] == "subject"
    assert "same subject and recipients as row 'client-0'" in problems["client-6"]["error"]
    assert problems["client-7"]["field"] == "pdf"
    assert "is not a PDF" in problems["client-7"]["error"]


def test_a_preview_of_a_half_sent_manifest_reports_what_was_sent_and_the_send_finishes_it(
    certyneo_emulator: CertyneoEmulator, tmp_path: Path, ti: FakeTaskInstance, context: Any
) -> None:
    journal = tmp_path / "journal.jsonl"
    run(operator(write_manifest(tmp_path, 4), journal), context)  # an earlier try sent four rows
    manifest = write_manifest(tmp_path, 6)  # the same four, and two more
    seen = certyneo_emulator.control.requests()[-1]["seq"]
    journal_before = journal.read_bytes()

    summary = run(operator(manifest, journal, dry_run=True), context)

    assert summary["already_sent"] == ["client-0", "client-1", "client-2", "client-3"]
    assert (summary["contracts"], summary["to_send"], summary["problems"]) == (6, 2, [])
    assert summary["requests"] == {"uploads": 2, "creates": 2, "sends": 2, "lookups": 1, "total": 7}
    assert "4 already sent by an earlier run" in summary["text"]
    assert "already sent (journal " in summary["text"]
    asked = [entry["route"] for entry in certyneo_emulator.control.requests(since=seen)]
    assert asked == ["GET /api/v1/envelopes"], "the one look-up the send makes too, and nothing mutating"
    assert journal.read_bytes() == journal_before, "the preview wrote nothing to the journal"

    expected = ti.pushed(xcom.FINGERPRINT)
    results = run(operator(manifest, journal, expected_fingerprint=expected), context)
    assert [r["status"] for r in results] == ["SENT"] * 6
    sends = certyneo_emulator.control.counters()["sends"]
    assert len(sends) == 6, "the two the preview said were left were sent"
    assert set(sends.values()) == {1}, "and nothing twice"


@pytest.mark.parametrize("change", ["pdf", "manifest", "pdf_by_digest"])
def test_a_send_refuses_what_changed_after_the_preview_and_asks_nothing(
    certyneo_emulator: CertyneoEmulator, tmp_path: Path, ti: FakeTaskInstance, context: Any, change: str
) -> None:
    manifest = write_manifest(tmp_path, 3)
    journal = tmp_path / "journal.jsonl"
    run(operator(manifest, journal, dry_run=True), context)
    expected: Any = ti.pushed(xcom.FINGERPRINT)
    if change == "manifest":
        write_manifest(tmp_path, 4)  # a row added after the approval
        said = "the manifest's content changed"
    else:
        (tmp_path / "pdfs" / "client-1.pdf").write_bytes(text_pdf("Another contract", ["changed"]))
        said = "pdfs/client-1.pdf changed ("
        if change == "pdf_by_digest":  # the fingerprint as a template renders it: its sha256 alone
            expected = expected["sha256"]
            said = "the manifest or its PDFs changed: fingerprint "
    seen = certyneo_emulator.control.counters()["requestsTotal"]

    with pytest.raises(CertyneoValidationError) as refused:
        run(operator(manifest, journal, expected_fingerprint=expected), context)

    assert not refused.value.retryable
    message = str(refused.value)
    assert "refusing to send: what was previewed (and approved) is not what is there now" in message
    assert said in message
    assert "Nothing was sent: preview the run again" in message
    assert certyneo_emulator.control.counters()["requestsTotal"] == seen == 0, "no request at all"


def test_a_send_with_an_empty_fingerprint_is_refused(
    certyneo_emulator: CertyneoEmulator, tmp_path: Path, context: Any
) -> None:
    """A template whose preview XCom is missing renders to 'None': that is no fingerprint, not a match."""
    with pytest.raises(CertyneoValidationError, match="the preview's 'fingerprint' XCom was not found"):
        run(operator(write_manifest(tmp_path, 2), tmp_path / "j.jsonl", expected_fingerprint="None"), context)
    assert certyneo_emulator.control.counters()["requestsTotal"] == 0
