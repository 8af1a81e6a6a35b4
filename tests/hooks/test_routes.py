"""Every route through CertyneoHook and CertyneoAsyncHook, against the emulator over a real socket."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path
from typing import Any

import pypdf
import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.exceptions import (
    CertyneoAuthError,
    CertyneoInvalidStateError,
    CertyneoNotFoundError,
    CertyneoValidationError,
)
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook
from airflow_provider_certyneo.hooks.certyneo_async import CertyneoAsyncHook
from tests.hooks.conftest import FAST_BACKOFF

pytestmark = pytest.mark.smoke


SIGNER = [{"email": "marie@example.com", "name": "Marie Dubois"}]


def test_documents(hook: CertyneoHook, pdf_file: Path) -> None:
    document = hook.upload_document(pdf_file)
    assert document["sha256"] == hashlib.sha256(pdf_file.read_bytes()).hexdigest()
    assert hook.get_document(document["id"]) == document
    renamed = hook.upload_document(str(pdf_file), filename="renamed.pdf")
    assert renamed["filename"] == "renamed.pdf"
    assert [d["id"] for d in hook.list_documents()] == [renamed["id"], document["id"]]
    hook.delete_document(document["id"])
    with pytest.raises(CertyneoNotFoundError, match="404"):
        hook.get_document(document["id"])


def test_envelope_lifecycle(
    hook: CertyneoHook, pdf_file: Path, certyneo_emulator: CertyneoEmulator, tmp_path: Path
) -> None:
    document = hook.upload_document(pdf_file)
    envelope = hook.create_envelope("Contrat", [document["id"]], SIGNER, message="Bonjour")
    assert envelope["status"] == "DRAFT"
    updated = hook.update_envelope(envelope["id"], subject="Contrat v2", signing_order="SEQUENTIAL")
    assert (updated["subject"], updated["signingOrder"]) == ("Contrat v2", "SEQUENTIAL")
    sent = hook.send_envelope(envelope["id"])
    assert sent["status"] == "SENT"
    assert sent["recipients"][0]["signUrl"]
    with pytest.raises(CertyneoInvalidStateError) as again:
        hook.send_envelope(envelope["id"])
    assert again.value.current_status == "SENT"
    trail = hook.download_audit_trail(envelope["id"], tmp_path)
    assert Path(trail["path"]).parent == tmp_path
    certyneo_emulator.control.sign(envelope["id"])
    assert hook.get_envelope(envelope["id"])["status"] == "COMPLETED"
    target = tmp_path / "out" / "signed.pdf"
    result = hook.download_signed_document(envelope["id"], target)
    data = target.read_bytes()
    assert result == {"path": str(target), "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert len(pypdf.PdfReader(io.BytesIO(data)).pages) == 2
    assert not list(tmp_path.rglob("*.part"))


def test_void_and_delete(hook: CertyneoHook, pdf_file: Path) -> None:
    document = hook.upload_document(pdf_file)
    draft = hook.create_envelope("Draft", [document["id"]], SIGNER)
    assert hook.void_envelope(draft["id"]) is None
    sent = hook.create_envelope("Sent", [document["id"]], SIGNER)
    hook.send_envelope(sent["id"])
    voided = hook.void_envelope(sent["id"])
    assert voided is not None
    assert voided["status"] == "VOIDED"
    with pytest.raises(CertyneoInvalidStateError, match="VOIDED"):
        hook.void_envelope(sent["id"])


def test_list_envelopes_follows_cursors_lazily(
    hook: CertyneoHook, pdf_file: Path, certyneo_emulator: CertyneoEmulator
) -> None:
    document = hook.upload_document(pdf_file)
    ids = [hook.create_envelope(f"E{i}", [document["id"]], SIGNER)["id"] for i in range(5)]
    hook.send_envelope(ids[0])
    before = certyneo_emulator.control.counters()["requests"].get("GET /api/v1/envelopes", 0)
    iterator = hook.list_envelopes(page_size=2)
    first = next(iterator)
    assert first["id"] == ids[-1]
    assert certyneo_emulator.control.counters()["requests"]["GET /api/v1/envelopes"] == before + 1
    assert [first["id"], *[e["id"] for e in iterator]] == list(reversed(ids))
    assert [e["id"] for e in hook.list_envelopes(status="SENT")] == [ids[0]]
    assert [e["id"] for e in hook.list_envelopes(status=["DRAFT"], page_size=100)] == list(reversed(ids[1:]))


def test_webhooks_and_keys(hook: CertyneoHook, certyneo_emulator: CertyneoEmulator) -> None:
    webhook = hook.create_webhook("https://example.com/hook", ["envelope.completed"])
    assert webhook["secret"].startswith("whsec_")
    assert [w["id"] for w in hook.list_webhooks()] == [webhook["id"]]
    hook.delete_webhook(webhook["id"])
    assert list(hook.list_webhooks()) == []
    key = hook.create_api_key("ci", "test")
    assert key["secret"].startswith("sk_test_")
    assert key["id"] in [k["id"] for k in hook.list_api_keys()]
    hook.revoke_api_key(key["id"])
    assert any(k["revokedAt"] for k in hook.list_api_keys() if k["id"] == key["id"])


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "http://localhost/certyneo/webhooks/x", "http://[::1]:9/h"]
)
def test_plain_http_webhooks_only_to_this_machine(hook: CertyneoHook, url: str) -> None:
    """A local receiver (the tests', a demo's) may be plain http; anything else must be https (see the
    bad-input matrix)."""
    assert hook.create_webhook(url, ["envelope.completed"])["url"] == url


def test_test_connection(hook: CertyneoHook, connection: Any) -> None:
    ok, message = hook.test_connection()
    assert ok
    assert "test environment" in message
    bad = CertyneoHook(connection("unknown", key="sk_test_" + "z" * 30))
    ok, message = bad.test_connection()
    assert not ok
    assert "401" in message
    assert "unknown API key" in message


def test_revoked_key_fails_at_once(
    hook: CertyneoHook, connection: Any, certyneo_emulator: CertyneoEmulator
) -> None:
    key = hook.create_api_key("short-lived")
    with CertyneoHook(connection("revoked", key=key["secret"]), **FAST_BACKOFF) as other:
        assert list(other.list_envelopes()) == []
        hook.revoke_api_key(key["id"])
        before = certyneo_emulator.control.counters()["requestsTotal"]
        with pytest.raises(CertyneoAuthError, match="revoked") as caught:
            other.get_envelope("env_x")
        assert certyneo_emulator.control.counters()["requestsTotal"] == before + 1
        assert key["secret"] not in str(caught.value)


def test_server_400_fails_at_once_with_its_message(
    hook: CertyneoHook, certyneo_emulator: CertyneoEmulator
) -> None:
    with pytest.raises(CertyneoValidationError, match="doc_missing' does not exist") as caught:
        hook.create_envelope("S", ["doc_missing"], SIGNER)
    assert caught.value.status == 400
    assert caught.value.code == "validation_error"
    assert str(caught.value).startswith("POST /api/v1/envelopes -> 400 validation_error")
    assert certyneo_emulator.control.counters()["requests"]["POST /api/v1/envelopes"] == 1


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"recipients": [{"email": "bad@", "name": "A"}]}, "recipients[0].email 'bad@'"),
        ({"recipients": SIGNER * 2}, "listed twice"),
        ({"recipients": [{"email": "cc@example.com", "name": "C", "role": "CC"}]}, "no SIGNER"),
        ({"recipients": []}, "recipients is empty"),
        ({"recipients": [{"email": f"r{i}@example.com", "name": "R"} for i in range(51)]}, "at most 50"),
        ({"subject": ""}, "subject is empty"),
        ({"subject": "x" * 201}, "201 characters"),
        ({"document_ids": []}, "document_ids is empty"),
    ],
)
def test_bad_input_is_refused_before_any_request(
    hook: CertyneoHook, certyneo_emulator: CertyneoEmulator, kwargs: dict[str, Any], fragment: str
) -> None:
    args: dict[str, Any] = {"subject": "S", "document_ids": ["doc_1"], "recipients": SIGNER, **kwargs}
    with pytest.raises(CertyneoValidationError) as caught:
        hook.create_envelope(**args)
    assert fragment in str(caught.value)
    assert certyneo_emulator.control.counters()["requestsTotal"] == 0


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b"PK\x03\x04docx", "not a PDF"), (b"", "is empty"), (None, "does not exist")],
)
def test_bad_files_are_refused_before_any_request(
    hook: CertyneoHook,
    certyneo_emulator: CertyneoEmulator,
    tmp_path: Path,
    content: bytes | None,
    fragment: str,
) -> None:
    path = tmp_path / "contract.pdf"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CertyneoValidationError, match=fragment):
        hook.upload_document(path)
    assert certyneo_emulator.control.counters()["requestsTotal"] == 0


def test_oversized_file_is_refused_before_any_request(
    hook: CertyneoHook, certyneo_emulator: CertyneoEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "big.pdf"
    with path.open("wb") as handle:
        handle.write(b"%PDF-1.4\n")
        handle.truncate(30 * 1024 * 1024)
    with pytest.raises(CertyneoValidationError, match=r"30\.0 MiB"):
        hook.upload_document(path)
    assert certyneo_emulator.control.counters()["requestsTotal"] == 0


def test_downloads_never_overwrite_silently_nor_escape(
    hook: CertyneoHook, pdf_file: Path, tmp_path: Path, certyneo_emulator: CertyneoEmulator
) -> None:
    document = hook.upload_document(pdf_file)
    envelope = hook.create_envelope("S", [document["id"]], SIGNER)
    hook.send_envelope(envelope["id"])
    target = tmp_path / "trail.pdf"
    target.write_bytes(b"precious")
    with pytest.raises(CertyneoValidationError, match="overwrite=True"):
        hook.download_audit_trail(envelope["id"], target)
    assert target.read_bytes() == b"precious"
    hook.download_audit_trail(envelope["id"], target, overwrite=True)
    assert target.read_bytes().startswith(b"%PDF-")
    with pytest.raises(CertyneoNotFoundError):
        hook.download_audit_trail("../../etc/passwd", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["contract.pdf", "trail.pdf"]


def hostile_ids(root: Path) -> list[str]:
    """Envelope ids that, used as a file name as they are, would land outside ``root/a/b/downloads``."""
    return ["../../escaped-up", f"{root}/escaped-absolute", "..\\..\\escaped-backslashes", "./.hidden/../.."]


def test_a_hostile_envelope_id_the_service_answers_is_downloaded_inside_the_folder(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, tmp_path: Path
) -> None:
    """The provider names a download after the envelope id it is given (an id can come from a server
    answer: a list, a webhook, an asset event). The emulator answers each hostile id with the envelope's
    PDF (an alias), so the name reaches the sanitiser and the file is written: inside the folder, sync
    and async, and nowhere else under this test's own folder."""
    with CertyneoHook(**FAST_BACKOFF) as hook:
        envelope = hook.create_envelope("S", [hook.upload_document(pdf_file)["id"]], SIGNER)
        hook.send_envelope(envelope["id"])
    for hostile in hostile_ids(tmp_path):
        certyneo_emulator.control.alias(envelope["id"], hostile)
    folder = tmp_path / "a" / "b" / "downloads"
    folder.mkdir(parents=True)
    written: list[Path] = []
    with CertyneoHook(**FAST_BACKOFF) as hook:
        for hostile in hostile_ids(tmp_path):
            written.append(Path(hook.download_audit_trail(hostile, folder)["path"]))

    async def download_async() -> list[Path]:
        async with CertyneoAsyncHook(**FAST_BACKOFF) as async_hook:
            return [
                Path((await async_hook.download_audit_trail(hostile, folder, overwrite=True))["path"])
                for hostile in hostile_ids(tmp_path)
            ]

    written += asyncio.run(download_async())
    served = certyneo_emulator.control.counters()["requests"]["GET /api/v1/envelopes/{id}/audit-trail"]
    assert served == 2 * len(hostile_ids(tmp_path)), "the service answered every hostile id"
    files = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert files - {pdf_file} == {folder / name for name in {p.name for p in written}}, (
        f"written outside {folder}: {sorted(map(str, files - {pdf_file}))}"
    )
    assert {p.parent for p in written} == {folder}
    assert all(p.read_bytes().startswith(b"%PDF-") for p in written)
    assert not any(p.name.startswith(".") for p in written), "no hidden file either"


class TestAsyncHook:
    @pytest.mark.asyncio
    async def test_every_route(
        self, certyneo_emulator: CertyneoEmulator, pdf_file: Path, tmp_path: Path
    ) -> None:
        async with CertyneoAsyncHook(**FAST_BACKOFF) as hook:
            document = await hook.upload_document(pdf_file)
            assert (await hook.get_document(document["id"]))["id"] == document["id"]
            assert [d["id"] async for d in hook.list_documents()] == [document["id"]]
            envelope = await hook.create_envelope("Async", [document["id"]], SIGNER)
            envelope = await hook.update_envelope(envelope["id"], message="hello")
            assert envelope["message"] == "hello"
            sent = await hook.send_envelope(envelope["id"])
            assert sent["status"] == "SENT"
            assert [e["id"] async for e in hook.list_envelopes(status="SENT")] == [envelope["id"]]
            trail = await hook.download_audit_trail(envelope["id"], tmp_path)
            assert trail["size"] > 0
            certyneo_emulator.control.sign(envelope["id"])
            signed = await hook.download_signed_document(envelope["id"], tmp_path / "s.pdf")
            assert signed["size"] > 0
            draft = await hook.create_envelope("Draft", [document["id"]], SIGNER)
            assert await hook.void_envelope(draft["id"]) is None
            with pytest.raises(CertyneoInvalidStateError):
                await hook.delete_document(document["id"])
            other = await hook.upload_document(pdf_file)
            await hook.delete_document(other["id"])
            webhook = await hook.create_webhook("https://example.com/h", ["envelope.created"])
            assert [w["id"] async for w in hook.list_webhooks()] == [webhook["id"]]
            await hook.delete_webhook(webhook["id"])
            key = await hook.create_api_key("async")
            assert key["id"] in [k["id"] async for k in hook.list_api_keys()]
            await hook.revoke_api_key(key["id"])
            with pytest.raises(CertyneoNotFoundError):
                await hook.get_envelope("env_missing")


def test_object_storage_paths_both_ways(
    hook: CertyneoHook, pdf_file: Path, tmp_path: Path, certyneo_emulator: CertyneoEmulator
) -> None:
    from airflow.sdk import ObjectStoragePath

    source = ObjectStoragePath(f"file://{pdf_file}")
    document = hook.upload_document(source)
    assert document["sha256"] == hashlib.sha256(pdf_file.read_bytes()).hexdigest()
    envelope = hook.create_envelope("S", [document["id"]], SIGNER)
    hook.send_envelope(envelope["id"])
    certyneo_emulator.control.sign(envelope["id"])
    target = ObjectStoragePath(f"file://{tmp_path}/store/signed.pdf")
    result = hook.download_signed_document(envelope["id"], target)
    assert result["path"].endswith("store/signed.pdf")
    assert hashlib.sha256((tmp_path / "store" / "signed.pdf").read_bytes()).hexdigest() == result["sha256"]
