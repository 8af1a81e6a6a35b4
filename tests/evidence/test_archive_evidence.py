"""CertyneoArchiveEvidenceOperator on the emulator: a genuine bundle verifies; each tampering the emulator is
made to serve is caught, named, and archived as nothing; a rerun skips complete bundles and redoes a
half-written one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_certyneo.emulator import evidence as emulator_evidence
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.emulator.seal import Sealer, new_pki
from airflow_provider_certyneo.evidence.audit_trail import TRAIL_ATTACHMENT
from airflow_provider_certyneo.evidence.checks import Report
from airflow_provider_certyneo.evidence.seal import attachment, open_pdf
from tests.evidence.conftest import Signed, append_page, run_operator


def evidence_of(folder: Path, envelope_id: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((folder / envelope_id / "evidence.json").read_text())
    return record


def test_a_genuine_bundle_verifies(
    certyneo_emulator: CertyneoEmulator, make_signed: Callable[..., Signed], archive_dir: Path
) -> None:
    signed = make_signed(documents=2)
    result = run_operator(envelope_ids=signed.envelope_id, destination=str(archive_dir))
    assert result == {
        "envelope_id": signed.envelope_id,
        "state": "archived",
        "folder": str(archive_dir / signed.envelope_id),
        "verified": True,
        "failed_checks": [],
    }
    record = evidence_of(archive_dir, signed.envelope_id)
    verification = record["verification"]
    assert verification["ok"] is True
    names = {check["name"] for check in verification["checks"]}
    assert {
        "signed_document.intact",
        "signed_document.covers_whole_file",
        "signed_document.trusted",
        "signed_document.timestamp",
        "audit_trail.trusted",
        "audit_trail.envelope",
        "audit_trail.documents",
        "audit_trail.signed_document",
        "audit_trail.signers",
    } <= names
    assert all(check["ok"] for check in verification["checks"])
    assert "electronic seal" in verification["certificate_subject"]
    assert len(verification["certificate_sha256"]) == 64
    assert verification["signing_time"]
    assert verification["timestamp_time"]
    pdf = archive_dir / signed.envelope_id / record["signed_document"]["file"]
    assert hashlib.sha256(pdf.read_bytes()).hexdigest() == record["signed_document"]["sha256"]
    assert [s["email"] for s in record["signers"]] == ["marie.dubois@example.com", "rh@example.com"]
    assert "signUrl" not in json.dumps(record), "no signing link (a bearer token) is archived"
    assert certyneo_emulator.key not in json.dumps(record)


def flip_a_signed_byte(data: bytes) -> bytes:
    at = data.index(b"Signature page")
    return data[:at] + b"X" + data[at + 1 :]


def other_certificate(data: bytes, signed: Signed) -> bytes:
    """The same document sealed by a self-made PKI nobody trusts."""
    envelope = signed.store.envelopes[signed.envelope_id]
    documents = [signed.store.documents[d] for d in envelope.document_ids]
    return Sealer(new_pki("Not Certyneo Root")).seal(
        emulator_evidence.signed_pdf(envelope, documents), "forged"
    )


def unsealed(data: bytes, signed: Signed) -> bytes:
    envelope = signed.store.envelopes[signed.envelope_id]
    return emulator_evidence.signed_pdf(envelope, [signed.store.documents[d] for d in envelope.document_ids])


def trail_with_other_hashes(signed: Signed) -> bytes:
    """A trail sealed with the emulator's own (trusted) seal, whose documents' SHA-256 are not the
    uploads'."""
    _, genuine_trail = signed.genuine()
    record = json.loads(attachment(open_pdf(genuine_trail), TRAIL_ATTACHMENT) or b"")
    for document in record["documents"]:
        document["sha256"] = hashlib.sha256(b"another contract").hexdigest()
    return signed.store._seal(emulator_evidence.audit_trail_pdf(record), "forged")


CASES: dict[str, tuple[str, str]] = {
    "a byte of the signed PDF changed": ("signed_document.intact", "changed after sealing"),
    "a page appended after the seal": ("signed_document.covers_whole_file", "appended after the seal"),
    "signed by another certificate": (
        "signed_document.trusted",
        "does not chain to the configured trust roots",
    ),
    "an unsealed PDF": ("signed_document.sealed", "not sealed"),
    "the signed PDF of another envelope": ("audit_trail.signed_document", "the archived one is"),
    "the audit trail of another envelope": ("audit_trail.envelope", "not"),
    "a trail whose documents' SHA-256 differ": ("audit_trail.documents", "in its record"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_tampering_is_caught_and_named(
    case: str, make_signed: Callable[..., Signed], archive_dir: Path
) -> None:
    signed, other = make_signed(), make_signed()
    signed_pdf, _ = signed.genuine()
    other_pdf, other_trail = other.genuine()
    if case == "a byte of the signed PDF changed":
        signed.serve(signed=flip_a_signed_byte(signed_pdf))
    elif case == "a page appended after the seal":
        signed.serve(signed=append_page(signed_pdf))
    elif case == "signed by another certificate":
        signed.serve(signed=other_certificate(signed_pdf, signed))
    elif case == "an unsealed PDF":
        signed.serve(signed=unsealed(signed_pdf, signed))
    elif case == "the signed PDF of another envelope":
        signed.serve(signed=other_pdf)
    elif case == "the audit trail of another envelope":
        signed.serve(trail=other_trail)
    else:
        signed.serve(trail=trail_with_other_hashes(signed))
    check, words = CASES[case]
    with pytest.raises(AirflowFailException) as failure:
        run_operator(envelope_ids=[signed.envelope_id, other.envelope_id], destination=str(archive_dir))
    message = str(failure.value)
    assert signed.envelope_id in message
    assert f"{check}: " in message, message
    assert words in message.split(f"{check}: ", 1)[1].split("; ")[0], message
    assert "the evidence of 1 of 2 envelope(s)" in message, "the genuine envelope verified"
    assert f"{signed.envelope_id}: " in message
    assert f"{other.envelope_id}: " not in message
    assert not (archive_dir / signed.envelope_id / "evidence.json").exists(), "nothing archived as evidence"
    rejected = json.loads((archive_dir / signed.envelope_id / "evidence.rejected.json").read_text())
    assert rejected["verification"]["ok"] is False
    assert check in [c["name"] for c in rejected["verification"]["checks"] if not c["ok"]]
    assert evidence_of(archive_dir, other.envelope_id)["verification"]["ok"] is True


def test_upload_hashes_that_differ_from_the_trail_are_caught(
    make_signed: Callable[..., Signed], archive_dir: Path
) -> None:
    signed = make_signed()
    (document_id,) = signed.document_ids
    wrong = {document_id: hashlib.sha256(b"the file we meant to upload").hexdigest()}
    with pytest.raises(
        AirflowFailException, match=r"audit_trail\.uploads: document .* was uploaded with SHA-256"
    ):
        run_operator(envelope_ids=signed.envelope_id, destination=str(archive_dir), uploaded_sha256=wrong)
    right = {document_id: signed.store.documents[document_id].sha256}
    result = run_operator(
        envelope_ids=signed.envelope_id, destination=str(archive_dir), uploaded_sha256=right
    )
    assert result["verified"] is True
    assert evidence_of(archive_dir, signed.envelope_id)["uploaded_sha256"] == right


def test_warn_archives_what_does_not_verify_and_warns(
    make_signed: Callable[..., Signed], archive_dir: Path, output: Callable[[], str]
) -> None:
    signed = make_signed()
    signed_pdf, _ = signed.genuine()
    signed.serve(signed=unsealed(signed_pdf, signed))
    result = run_operator(envelope_ids=[signed.envelope_id], destination=str(archive_dir), verify="warn")
    assert result[0]["state"] == "archived"
    assert result[0]["verified"] is False
    record = evidence_of(archive_dir, signed.envelope_id)
    assert record["verification"]["ok"] is False
    assert record["verification"]["mode"] == "warn"
    text = output()
    assert "NOT verified" in text
    assert "signed_document.sealed" in text


def test_a_rerun_skips_complete_bundles_and_redoes_a_half_written_one(
    certyneo_emulator: CertyneoEmulator, make_signed: Callable[..., Signed], archive_dir: Path
) -> None:
    first, second = make_signed(), make_signed()
    ids = [first.envelope_id, second.envelope_id]
    assert [r["state"] for r in run_operator(envelope_ids=ids, destination=str(archive_dir))] == [
        "archived"
    ] * 2
    kept = (archive_dir / first.envelope_id / "evidence.json").read_bytes()
    # half-written: the PDFs are there (one of them cut short) but not evidence.json, written last
    (archive_dir / second.envelope_id / "evidence.json").unlink()
    trail = archive_dir / second.envelope_id / f"{second.envelope_id}-audit-trail.pdf"
    trail.write_bytes(trail.read_bytes()[:100])
    before = certyneo_emulator.control.counters()["requests"]
    results = run_operator(envelope_ids=ids, destination=str(archive_dir))
    assert [r["state"] for r in results] == ["skipped", "archived"]
    assert all(r["verified"] for r in results)
    after = certyneo_emulator.control.counters()["requests"]
    downloads = "GET /api/v1/envelopes/{id}/signed-document"
    assert after.get(downloads, 0) - before.get(downloads, 0) == 1, "only the half-written bundle downloads"
    assert (archive_dir / first.envelope_id / "evidence.json").read_bytes() == kept
    assert evidence_of(archive_dir, second.envelope_id)["verification"]["ok"] is True


def test_bulk_results_and_envelopes_not_completed(
    certyneo_emulator: CertyneoEmulator, make_signed: Callable[..., Signed], archive_dir: Path
) -> None:
    """The bulk operator's results are accepted as they are; a row with no envelope is left out; an envelope
    not COMPLETED is not archived, and a task with nothing completed is skipped."""
    from airflow.providers.common.compat.sdk import AirflowSkipException

    signed = make_signed()
    rows = [
        {"row": 1, "envelope_id": signed.envelope_id, "status": "SENT", "error": None, "retryable": False},
        {"row": 2, "envelope_id": None, "status": "FAILED", "error": "bad e-mail", "retryable": False},
    ]
    assert [r["state"] for r in run_operator(envelope_ids=rows, destination=str(archive_dir))] == ["archived"]
    envelope_id = _declined(certyneo_emulator, archive_dir.parent / "declined.pdf")
    with pytest.raises(AirflowSkipException, match=f"{envelope_id} is DECLINED"):
        run_operator(envelope_ids=envelope_id, destination=str(archive_dir))
    assert not (archive_dir / envelope_id).exists()


def _declined(emulator: CertyneoEmulator, pdf: Path) -> str:
    from airflow_provider_certyneo.emulator.pdf import text_pdf
    from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

    pdf.write_bytes(text_pdf("Declined", ["x"]))
    with CertyneoHook() as hook:
        document_id = hook.upload_document(pdf)["id"]
        envelope = hook.create_envelope("Declined", [document_id], [{"email": "a@example.com", "name": "A"}])
        hook.send_envelope(envelope["id"])
    emulator.control.decline(envelope["id"], "non")
    return envelope["id"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"verify": "maybe"}, "verify is 'maybe'; use True"),
        (
            {"trust_roots": "/nonexistent/root.pem"},
            "the operator's trust_roots: '/nonexistent/root.pem' is neither",
        ),
        (
            {"trust_roots": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----"},
            "trust_roots",
        ),
        ({"envelope_ids": [42]}, "envelope_ids holds a int"),
        ({"record_extra": {"E": {"verification": 1}}, "envelope_ids": "E"}, "would replace verification"),
    ],
)
def test_bad_input_names_the_field_and_the_fix(
    certyneo_emulator: CertyneoEmulator, archive_dir: Path, kwargs: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"envelope_ids": "env_x", "destination": str(archive_dir), **kwargs}
    if kwargs.get("record_extra"):
        from airflow_provider_certyneo.evidence.archive import check_extra

        with pytest.raises(ValueError, match=message):
            check_extra(kwargs["record_extra"]["E"], "E")
        return
    with pytest.raises((ValueError, AirflowFailException)) as failure:
        run_operator(**arguments)
    assert message in str(failure.value)
    assert certyneo_emulator.key not in str(failure.value)


def test_no_trust_roots_says_where_to_put_them(
    certyneo_emulator: CertyneoEmulator, archive_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CERTYNEO_DEFAULT", certyneo_emulator.connection_json(evidence_trust_roots=None)
    )
    with pytest.raises(AirflowFailException, match="set the extra field 'evidence_trust_roots'") as failure:
        run_operator(envelope_ids="env_x", destination=str(archive_dir))
    assert "verify='warn'" in str(failure.value)


def test_report_summary_names_each_failure() -> None:
    report = Report()
    report.add("a", True, "fine")
    report.add("b", False, "broken")
    assert not report.ok
    assert report.summary() == "b: broken"
