"""The emulator seals like Certyneo: a PAdES seal chaining to the test root it serves, the audit trail
sealed the same way with ``audit-trail.json`` attached, the same bytes on every download, and the same root
and bytes after a restart from its state file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from airflow_provider_certyneo.emulator.handle import EmulatorControl
from airflow_provider_certyneo.emulator.models import new_key_secret
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.emulator.server import EmulatorProcess
from airflow_provider_certyneo.evidence.audit_trail import TRAIL_ATTACHMENT
from airflow_provider_certyneo.evidence.checks import Report
from airflow_provider_certyneo.evidence.seal import attachment, check_seal
from airflow_provider_certyneo.evidence.trust import load_trust_roots
from tests.emulator.conftest import PDF
from tests.evidence.conftest import Signed


def api(emulator: CertyneoEmulator) -> httpx.Client:
    return httpx.Client(
        base_url=f"{emulator.base_url}/api/v1",
        headers={"Authorization": f"Bearer {emulator.key}"},
        timeout=30,
    )


def test_the_trust_root_is_served_as_pem_and_kept_across_resets(certyneo_emulator: CertyneoEmulator) -> None:
    response = httpx.get(f"{certyneo_emulator.base_url}/_emulator/trust-root")
    assert response.status_code == 200
    assert response.text.startswith("-----BEGIN CERTIFICATE-----")
    (root,) = load_trust_roots([(response.text, "trust-root")])
    assert root.ca
    certyneo_emulator.control.reset()
    assert certyneo_emulator.control.trust_root() == response.text


def test_signed_pdf_and_trail_are_sealed_and_always_the_same_bytes(
    certyneo_emulator: CertyneoEmulator, make_signed: Callable[..., Signed]
) -> None:
    signed = make_signed(documents=2)
    roots = load_trust_roots([(certyneo_emulator.trust_root, "emulator")])
    with api(certyneo_emulator) as client:
        first = client.get(f"/envelopes/{signed.envelope_id}/signed-document").content
        trail = client.get(f"/envelopes/{signed.envelope_id}/audit-trail").content
        assert client.get(f"/envelopes/{signed.envelope_id}/signed-document").content == first
        assert client.get(f"/envelopes/{signed.envelope_id}/audit-trail").content == trail
        records = [client.get(f"/documents/{d}").json() for d in signed.document_ids]
    for data, what in ((first, "signed_document"), (trail, "audit_trail")):
        report = Report()
        check_seal(data, what, roots, report)
        assert report.ok, report.summary()
        assert report.seals[what]["timestamp_time"]
    report = Report()
    record = json.loads(attachment(check_seal(trail, "audit_trail", roots, report), TRAIL_ATTACHMENT) or b"")
    assert set(record) == {
        "envelopeId",
        "subject",
        "status",
        "documents",
        "signers",
        "events",
        "signedDocumentSha256",
    }
    assert record["envelopeId"] == signed.envelope_id
    assert record["status"] == "COMPLETED"
    assert record["documents"] == [
        {"id": r["id"], "filename": r["filename"], "sha256": r["sha256"]} for r in records
    ]
    assert record["signedDocumentSha256"] == hashlib.sha256(first).hexdigest()
    assert [s["status"] for s in record["signers"]] == ["SIGNED", "SIGNED"]
    assert {e["type"] for e in record["events"]} >= {"envelope.created", "envelope.sent", "recipient.signed"}
    assert set(record["events"][0]) == {"at", "type", "detail"}


def test_a_trail_before_completion_holds_the_events_so_far(
    certyneo_emulator: CertyneoEmulator, tmp_path: Path
) -> None:
    with api(certyneo_emulator) as client:
        document = client.post("/documents", files={"file": ("c.pdf", PDF, "application/pdf")}).json()
        body = {
            "subject": "Pending",
            "documentIds": [document["id"]],
            "recipients": [{"email": "a@example.com", "name": "A", "role": "SIGNER"}],
        }
        envelope = client.post("/envelopes", json=body).json()
        client.post(f"/envelopes/{envelope['id']}/send")
        trail = client.get(f"/envelopes/{envelope['id']}/audit-trail").content
    report = Report()
    reader = check_seal(trail, "audit_trail", load_trust_roots([(certyneo_emulator.trust_root, "x")]), report)
    assert report.ok, report.summary()
    record = json.loads(attachment(reader, TRAIL_ATTACHMENT) or b"")
    assert record["status"] == "SENT"
    assert record["signedDocumentSha256"] is None
    assert [e["type"] for e in record["events"]] == ["envelope.created", "envelope.sent"]


@pytest.mark.slow
def test_a_restart_from_the_state_file_seals_with_the_same_root_and_serves_the_same_bytes(
    tmp_path: Path,
) -> None:
    key = new_key_secret("test")
    emulator = EmulatorProcess(key, state_file=str(tmp_path / "state.pickle")).start()
    try:
        control = EmulatorControl(emulator.base_url)
        with httpx.Client(
            base_url=f"{emulator.base_url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as client:
            document = client.post("/documents", files={"file": ("c.pdf", PDF, "application/pdf")}).json()
            body = {
                "subject": "Kept",
                "documentIds": [document["id"]],
                "recipients": [{"email": "a@example.com", "name": "A", "role": "SIGNER"}],
            }
            envelope_id = client.post("/envelopes", json=body).json()["id"]
            client.post(f"/envelopes/{envelope_id}/send")
            control.sign(envelope_id)
            root = control.trust_root()
            signed = client.get(f"/envelopes/{envelope_id}/signed-document").content
            trail = client.get(f"/envelopes/{envelope_id}/audit-trail").content
        control.close()
        emulator.kill()
        emulator.start()
        control = EmulatorControl(emulator.base_url)
        assert control.trust_root() == root
        with httpx.Client(
            base_url=f"{emulator.base_url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as client:
            assert client.get(f"/envelopes/{envelope_id}/signed-document").content == signed
            assert client.get(f"/envelopes/{envelope_id}/audit-trail").content == trail
            # a new envelope after the restart is sealed under the same root
            document = client.post("/documents", files={"file": ("d.pdf", PDF, "application/pdf")}).json()
            body["documentIds"] = [document["id"]]
            other = client.post("/envelopes", json=body).json()["id"]
            client.post(f"/envelopes/{other}/send")
            control.sign(other)
            fresh = client.get(f"/envelopes/{other}/signed-document").content
        report = Report()
        check_seal(fresh, "signed_document", load_trust_roots([(root, "before the restart")]), report)
        assert report.ok, report.summary()
        control.close()
    finally:
        emulator.stop()
