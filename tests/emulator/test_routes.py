"""Every route and rule of the contract, against the emulator over a real socket."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any

import httpx
import pypdf
import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from tests.emulator.conftest import PDF, client_for, error_of
from tests.support.polling import wait_until

Factory = Callable[..., dict[str, Any]]


class TestAuthentication:
    @pytest.mark.parametrize(
        ("header", "fragment"),
        [
            (None, "missing"),
            ("Basic abc", "malformed"),
            ("Bearer sk_test_short", "malformed"),
            ("Bearer sk_test_" + "x" * 30, "unknown"),
        ],
    )
    def test_bad_keys_get_401(
        self, certyneo_emulator: CertyneoEmulator, header: str | None, fragment: str
    ) -> None:
        headers = {"Authorization": header} if header else {}
        response = httpx.get(f"{certyneo_emulator.base_url}/api/v1/envelopes", headers=headers)
        assert response.status_code == 401
        error = error_of(response)
        assert error["code"] == "unauthorized"
        assert fragment in error["message"]

    def test_test_and_live_data_are_isolated(
        self, api: httpx.Client, live_api: httpx.Client, draft: Factory
    ) -> None:
        envelope = draft()
        assert live_api.get(f"/envelopes/{envelope['id']}").status_code == 404
        assert live_api.get(f"/documents/{envelope['documentIds'][0]}").status_code == 404
        assert live_api.get("/envelopes").json()["data"] == []
        assert api.get(f"/envelopes/{envelope['id']}").status_code == 200


class TestKeys:
    def test_create_list_revoke(self, certyneo_emulator: CertyneoEmulator, api: httpx.Client) -> None:
        created = api.post("/keys", json={"name": "ci", "environment": "test"})
        assert created.status_code == 201
        record = created.json()
        assert record["secret"].startswith("sk_test_")
        assert len(record["secret"]) >= 8 + 24
        assert record["prefix"] == record["secret"][:12]
        listed = api.get("/keys").json()["data"]
        assert record["id"] in [k["id"] for k in listed]
        assert all("secret" not in k for k in listed)
        with client_for(certyneo_emulator, record["secret"]) as other:
            assert other.get("/envelopes").status_code == 200
            assert api.delete(f"/keys/{record['id']}").status_code == 204
            revoked = other.get("/envelopes")
        assert revoked.status_code == 401
        assert "revoked" in error_of(revoked)["message"]
        assert any(k["revokedAt"] for k in api.get("/keys").json()["data"] if k["id"] == record["id"])

    def test_test_key_cannot_create_live_keys(self, api: httpx.Client) -> None:
        response = api.post("/keys", json={"name": "x", "environment": "live"})
        assert response.status_code == 403
        assert error_of(response)["code"] == "forbidden"

    def test_unknown_key_id_is_404(self, api: httpx.Client) -> None:
        assert api.delete("/keys/key_missing").status_code == 404


class TestDocuments:
    def test_upload_describes_the_pdf(self, upload: Factory) -> None:
        document = upload()
        assert document["id"].startswith("doc_")
        assert document["contentType"] == "application/pdf"
        assert document["size"] == len(PDF)
        assert document["sha256"] == hashlib.sha256(PDF).hexdigest()
        assert document["pages"] == 1
        assert document["filename"] == "contract.pdf"

    @pytest.mark.parametrize(
        ("data", "status", "code"),
        [
            (b"PK\x03\x04 this is a docx", 415, "unsupported_media_type"),
            (b"", 415, "unsupported_media_type"),
            (b"%PDF-1.4 but nothing after", 415, "unsupported_media_type"),
        ],
    )
    def test_upload_refuses_non_pdfs(self, api: httpx.Client, data: bytes, status: int, code: str) -> None:
        response = api.post("/documents", files={"file": ("x.pdf", data, "application/pdf")})
        assert response.status_code == status
        assert error_of(response)["code"] == code

    def test_upload_over_25_mib_is_413(self, api: httpx.Client, big_file: Any) -> None:
        with big_file.open("rb") as handle:
            response = api.post("/documents", files={"file": ("big.pdf", handle, "application/pdf")})
        assert response.status_code == 413
        assert error_of(response)["code"] == "payload_too_large"

    def test_upload_needs_multipart_file_field(self, api: httpx.Client) -> None:
        assert api.post("/documents", json={"file": "x"}).status_code == 415
        response = api.post("/documents", files={"other": ("x.pdf", PDF, "application/pdf")})
        assert response.status_code == 400
        assert "file" in error_of(response)["message"]

    def test_get_list_delete(self, api: httpx.Client, upload: Factory) -> None:
        first, second = upload(), upload()
        assert api.get(f"/documents/{first['id']}").json() == first
        listed = api.get("/documents").json()
        assert [d["id"] for d in listed["data"]] == [second["id"], first["id"]]
        assert api.delete(f"/documents/{first['id']}").status_code == 204
        assert api.get(f"/documents/{first['id']}").status_code == 404

    def test_document_of_a_sent_envelope_cannot_be_deleted(self, api: httpx.Client, draft: Factory) -> None:
        envelope = draft()
        api.post(f"/envelopes/{envelope['id']}/send")
        response = api.delete(f"/documents/{envelope['documentIds'][0]}")
        assert response.status_code == 409
        assert error_of(response)["code"] == "invalid_state"


RECIPIENT = {"email": "a@example.com", "name": "A"}


class TestEnvelopeRules:
    @pytest.mark.parametrize(
        ("change", "fragment"),
        [
            ({"subject": ""}, "subject"),
            ({"subject": "x" * 201}, "subject"),
            ({"documentIds": []}, "documentIds"),
            ({"documentIds": ["doc_unknown"]}, "doc_unknown"),
            ({"recipients": []}, "recipients"),
            ({"recipients": [{"email": "not-an-email", "name": "A"}]}, "not-an-email"),
            ({"recipients": [RECIPIENT, {**RECIPIENT, "email": "A@example.com"}]}, "twice"),
            ({"recipients": [{**RECIPIENT, "role": "CC"}]}, "SIGNER"),
            ({"recipients": [{**RECIPIENT, "role": "WITNESS"}]}, "role"),
            ({"recipients": [{**RECIPIENT, "order": 0}]}, "order"),
            ({"recipients": [{"email": f"r{i}@example.com", "name": "R"} for i in range(51)]}, "recipients"),
            ({"signingOrder": "RANDOM"}, "signingOrder"),
        ],
    )
    def test_create_rules(
        self, api: httpx.Client, upload: Factory, change: dict[str, Any], fragment: str
    ) -> None:
        body = {"subject": "S", "documentIds": [upload()["id"]], "recipients": [RECIPIENT], **change}
        response = api.post("/envelopes", json=body)
        assert response.status_code == 400, response.text
        error = error_of(response)
        assert error["code"] == "validation_error"
        assert fragment in error["message"]

    def test_twenty_one_documents_are_refused(self, api: httpx.Client, upload: Factory) -> None:
        doc = upload()["id"]
        response = api.post(
            "/envelopes", json={"subject": "S", "documentIds": [doc] * 21, "recipients": [RECIPIENT]}
        )
        assert response.status_code == 400

    def test_fifty_recipients_are_accepted(self, api: httpx.Client, upload: Factory) -> None:
        recipients = [{"email": f"r{i}@example.com", "name": "R"} for i in range(50)]
        response = api.post(
            "/envelopes", json={"subject": "S", "documentIds": [upload()["id"]], "recipients": recipients}
        )
        assert response.status_code == 201

    def test_body_must_be_json_object(self, api: httpx.Client) -> None:
        assert (
            api.post("/envelopes", content=b"[1]", headers={"Content-Type": "application/json"}).status_code
            == 400
        )
        assert (
            api.post("/envelopes", content=b"{", headers={"Content-Type": "application/json"}).status_code
            == 400
        )
        assert api.post("/envelopes", content=b"subject=x").status_code == 415


class TestEnvelopeLifecycle:
    def test_create_gives_a_draft(self, draft: Factory) -> None:
        envelope = draft(message="Merci", signingOrder="SEQUENTIAL")
        assert envelope["status"] == "DRAFT"
        assert envelope["message"] == "Merci"
        assert envelope["signingOrder"] == "SEQUENTIAL"
        assert envelope["recipients"][0]["signUrl"] is None
        assert envelope["recipients"][0]["status"] == "PENDING"
        assert envelope["sentAt"] is None
        assert envelope["expiresAt"] is None

    def test_patch_only_in_draft(self, api: httpx.Client, draft: Factory) -> None:
        envelope = draft()
        patched = api.patch(f"/envelopes/{envelope['id']}", json={"subject": "New subject"})
        assert patched.status_code == 200
        assert patched.json()["subject"] == "New subject"
        assert patched.json()["recipients"] == envelope["recipients"]
        assert api.patch(f"/envelopes/{envelope['id']}", json={"subject": ""}).status_code == 400
        api.post(f"/envelopes/{envelope['id']}/send")
        refused = api.patch(f"/envelopes/{envelope['id']}", json={"subject": "Again"})
        assert refused.status_code == 409
        assert error_of(refused)["details"] == [{"field": "status", "status": "SENT"}]

    def test_send_once_then_409_with_status(self, api: httpx.Client, draft: Factory) -> None:
        envelope = draft(recipients=[RECIPIENT, {"email": "cc@example.com", "name": "CC", "role": "CC"}])
        sent = api.post(f"/envelopes/{envelope['id']}/send")
        assert sent.status_code == 200
        body = sent.json()
        assert body["status"] == "SENT"
        assert body["sentAt"]
        assert body["expiresAt"]
        signer, cc = body["recipients"]
        assert signer["signUrl"].startswith("http")
        assert cc["signUrl"] is None
        again = api.post(f"/envelopes/{envelope['id']}/send")
        assert again.status_code == 409
        assert error_of(again)["details"][0]["status"] == "SENT"

    def test_delete_draft_void_sent_refuse_terminal(self, api: httpx.Client, draft: Factory) -> None:
        deleted = draft()
        assert api.delete(f"/envelopes/{deleted['id']}").status_code == 204
        assert api.get(f"/envelopes/{deleted['id']}").status_code == 404
        sent = draft()
        api.post(f"/envelopes/{sent['id']}/send")
        voided = api.delete(f"/envelopes/{sent['id']}")
        assert voided.status_code == 200
        assert voided.json()["status"] == "VOIDED"
        again = api.delete(f"/envelopes/{sent['id']}")
        assert again.status_code == 409
        assert error_of(again)["details"][0]["status"] == "VOIDED"

    def test_signing_completes_and_serves_pdfs(
        self, certyneo_emulator: CertyneoEmulator, api: httpx.Client, draft: Factory
    ) -> None:
        envelope = draft()
        assert api.get(f"/envelopes/{envelope['id']}/audit-trail").status_code == 409
        api.post(f"/envelopes/{envelope['id']}/send")
        early = api.get(f"/envelopes/{envelope['id']}/signed-document")
        assert early.status_code == 409
        assert error_of(early)["details"][0]["status"] == "SENT"
        certyneo_emulator.control.sign(envelope["id"])
        completed = api.get(f"/envelopes/{envelope['id']}").json()
        assert completed["status"] == "COMPLETED"
        assert completed["completedAt"]
        assert completed["recipients"][0]["status"] == "SIGNED"
        assert completed["recipients"][0]["signedAt"]
        signed = api.get(f"/envelopes/{envelope['id']}/signed-document")
        assert signed.headers["content-type"] == "application/pdf"
        reader = pypdf.PdfReader(io.BytesIO(signed.content))
        assert len(reader.pages) == 2
        last = reader.pages[-1].extract_text()
        assert "Marie Dubois" in last
        assert "client@example.com" in last
        trail = pypdf.PdfReader(io.BytesIO(api.get(f"/envelopes/{envelope['id']}/audit-trail").content))
        text = "".join(page.extract_text() for page in trail.pages)
        document = api.get(f"/documents/{envelope['documentIds'][0]}").json()
        assert document["sha256"] in text
        for event in ("created", "sent", "Signed by Marie Dubois", "completed"):
            assert event in text

    def test_sequential_order(
        self, certyneo_emulator: CertyneoEmulator, api: httpx.Client, draft: Factory
    ) -> None:
        envelope = draft(
            signingOrder="SEQUENTIAL",
            recipients=[
                {"email": "hr@example.com", "name": "HR", "order": 2},
                {"email": "new@example.com", "name": "New Hire", "order": 1},
            ],
        )
        sent = api.post(f"/envelopes/{envelope['id']}/send").json()
        hr_url = next(r["signUrl"] for r in sent["recipients"] if r["email"] == "hr@example.com")
        assert httpx.post(f"{hr_url}/sign").status_code == 409
        assert "Earlier signers" in httpx.get(hr_url).text
        after_first = certyneo_emulator.control.sign(envelope["id"], email="new@example.com")
        assert after_first["status"] == "SENT"
        assert httpx.post(f"{hr_url}/sign").status_code == 200
        assert api.get(f"/envelopes/{envelope['id']}").json()["status"] == "COMPLETED"

    def test_decline_records_who_and_why(
        self, certyneo_emulator: CertyneoEmulator, api: httpx.Client, draft: Factory
    ) -> None:
        envelope = draft()
        sent = api.post(f"/envelopes/{envelope['id']}/send").json()
        page = httpx.get(sent["recipients"][0]["signUrl"])
        assert "Sign" in page.text
        assert "Decline" in page.text
        httpx.post(f"{sent['recipients'][0]['signUrl']}/decline", data={"reason": "Wrong price"})
        declined = api.get(f"/envelopes/{envelope['id']}").json()
        assert declined["status"] == "DECLINED"
        assert declined["recipients"][0]["status"] == "DECLINED"
        assert declined["recipients"][0]["declineReason"] == "Wrong price"
        assert api.delete(f"/envelopes/{envelope['id']}").status_code == 409

    def test_expire(self, certyneo_emulator: CertyneoEmulator, api: httpx.Client, draft: Factory) -> None:
        envelope = draft()
        api.post(f"/envelopes/{envelope['id']}/send")
        certyneo_emulator.control.expire(envelope["id"])
        assert api.get(f"/envelopes/{envelope['id']}").json()["status"] == "EXPIRED"

    def test_expiry_by_lifetime(
        self, certyneo_emulator: CertyneoEmulator, api: httpx.Client, draft: Factory
    ) -> None:
        certyneo_emulator.control.configure(envelopeLifetimeSeconds=0.2)
        envelope = draft()
        sent = api.post(f"/envelopes/{envelope['id']}/send").json()
        assert sent["status"] == "SENT"
        import time

        time.sleep(0.3)
        assert api.get(f"/envelopes/{envelope['id']}").json()["status"] == "EXPIRED"

    def test_auto_sign(self, certyneo_emulator: CertyneoEmulator, api: httpx.Client, draft: Factory) -> None:
        certyneo_emulator.control.configure(autoSignAfter=0.1)
        envelope = draft()
        api.post(f"/envelopes/{envelope['id']}/send")
        wait_until(
            lambda: api.get(f"/envelopes/{envelope['id']}").json()["status"] == "COMPLETED",
            timeout=5,
            interval=0.05,
            what="the auto-signed envelope",
        )


class TestLists:
    def test_cursor_walks_every_item_once_newest_first(self, api: httpx.Client, draft: Factory) -> None:
        created = [draft()["id"] for _ in range(5)]
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = api.get("/envelopes", params=params).json()
            assert len(page["data"]) <= 2
            seen += [e["id"] for e in page["data"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert seen == list(reversed(created))

    def test_status_and_updated_since_filters(self, api: httpx.Client, draft: Factory) -> None:
        old = draft()
        sent = draft()
        api.post(f"/envelopes/{sent['id']}/send")
        only_sent = api.get("/envelopes", params={"status": "SENT"}).json()["data"]
        assert [e["id"] for e in only_sent] == [sent["id"]]
        both = api.get("/envelopes", params=[("status", "SENT"), ("status", "DRAFT")]).json()["data"]
        assert {e["id"] for e in both} == {old["id"], sent["id"]}
        since = api.get(f"/envelopes/{sent['id']}").json()["updatedAt"]
        recent = api.get("/envelopes", params={"updatedSince": since}).json()["data"]
        assert [e["id"] for e in recent] == [sent["id"]]

    @pytest.mark.parametrize(
        "params",
        [
            {"limit": 0},
            {"limit": 101},
            {"limit": "x"},
            {"status": "SIGNED"},
            {"updatedSince": "yesterday"},
            {"cursor": "!!!"},
        ],
    )
    def test_bad_list_parameters(self, api: httpx.Client, params: dict[str, Any]) -> None:
        response = api.get("/envelopes", params=params)
        assert response.status_code == 400
        assert error_of(response)["code"] == "validation_error"

    @pytest.mark.parametrize("path", ["/documents", "/envelopes", "/webhooks", "/keys"])
    def test_every_list_has_the_same_shape(self, api: httpx.Client, path: str) -> None:
        body = api.get(path, params={"limit": 1}).json()
        assert set(body) == {"data", "nextCursor"}


class TestUnknownIds:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/documents/doc_x"),
            ("DELETE", "/documents/doc_x"),
            ("GET", "/envelopes/env_x"),
            ("PATCH", "/envelopes/env_x"),
            ("DELETE", "/envelopes/env_x"),
            ("POST", "/envelopes/env_x/send"),
            ("GET", "/envelopes/env_x/audit-trail"),
            ("GET", "/envelopes/env_x/signed-document"),
            ("DELETE", "/webhooks/whk_x"),
            ("DELETE", "/keys/key_x"),
        ],
    )
    def test_404(self, api: httpx.Client, method: str, path: str) -> None:
        kwargs: dict[str, Any] = {"json": {"subject": "x"}} if method == "PATCH" else {}
        response = api.request(method, path, **kwargs)
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"
