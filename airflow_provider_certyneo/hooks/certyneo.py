"""CertyneoHook (sync, for operators and ``@task`` code) and CertyneoAsyncHook (for triggers).

Both speak every route of the Certyneo API v1, pace themselves with the key's rate governor, retry what
is safe to retry and recover what is not. They differ only in how they wait and do I/O: the rules live in
:mod:`.protocol` and :mod:`.calls`, what they share in :mod:`.base`, the async hook in
:mod:`.certyneo_async`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from typing import Any, cast

import httpx

from airflow_provider_certyneo.client import calls
from airflow_provider_certyneo.client.calls import Route
from airflow_provider_certyneo.client.files import download_target, inspect_pdf
from airflow_provider_certyneo.client.protocol import (
    CHUNK,
    Answer,
    ApiCall,
    DownloadSink,
    RetryPolicy,
    Throttle,
    Upload,
)
from airflow_provider_certyneo.client.settings import CertyneoSettings
from airflow_provider_certyneo.client.types import (
    ApiKey,
    Document,
    DownloadResult,
    Envelope,
    RecipientInput,
    Webhook,
)
from airflow_provider_certyneo.exceptions import CertyneoError
from airflow_provider_certyneo.hooks.base import CertyneoBaseHook, tls_context

log = logging.getLogger(__name__)
# The UI's Test button answers within seconds: a short retry budget.
TEST_BUTTON_POLICY = RetryPolicy(max_retries=1, backoff_base=0.2, max_rate_limit_wait=5)


class CertyneoHook(CertyneoBaseHook):
    """Sync access to Certyneo, one pooled ``httpx.Client`` per hook.

    :param certyneo_conn_id: a ``certyneo`` connection: API key in the password, base URL in the host,
        and optional extras ``timeout``, ``max_retries``, ``rate_limit_per_minute``, ``rate_limit_burst``,
        ``rate_limit_store``, ``rate_limit_redis_conn_id``, ``verify_ssl``, ``environment``.
    :param backoff_base: first retry delay in seconds (default: the connection's ``backoff_base``).
    :param backoff_cap: longest retry delay in seconds (default: the connection's ``backoff_cap``).
    """

    def __init__(self, certyneo_conn_id: str = CertyneoBaseHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(certyneo_conn_id, **kwargs)
        self._client: httpx.Client | None = None

    @property
    def settings(self) -> CertyneoSettings:
        """The connection's settings, read once (the key never leaves them)."""
        if self._settings is None:
            self._load_settings(self.get_connection(self.certyneo_conn_id))
        assert self._settings is not None
        return self._settings

    def get_conn(self) -> httpx.Client:
        """The pooled ``httpx.Client`` of this hook, made on first use."""
        if self._client is None:
            settings = self.settings
            self._client = httpx.Client(
                **self._new_client_options(settings, tls_context(settings.verify_ssl))
            )
        return self._client

    def close(self) -> None:
        """Close the HTTP client; the hook can be used again afterwards."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> CertyneoHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, route: Route, policy: RetryPolicy | None = None) -> Any:
        """Drive ``route`` (a :mod:`~airflow_provider_certyneo.client.calls` function awaiting its retry
        policy) to its end: requests through the pooled client, paced by the key's governor; waits slept."""
        client = self.get_conn()
        assert self._governor is not None
        call = route(policy=policy or self.policy)
        try:
            effect = next(call)
            while True:
                outcome: Answer = None
                if isinstance(effect, ApiCall):
                    outcome = self._send(client, effect)
                    self._observe(outcome)
                elif isinstance(effect, Throttle):
                    self._log_wait(effect)
                    self._governor.drain(effect.seconds)
                else:
                    self._log_wait(effect)
                    time.sleep(effect.seconds)
                effect = call.send(outcome)
        except StopIteration as stop:
            return stop.value

    def _send(self, client: httpx.Client, call: ApiCall) -> httpx.Response | httpx.TransportError:
        assert self._governor is not None
        self._governor.pace()
        started = time.monotonic()
        try:
            if call.sink is not None:
                with client.stream(call.method, call.path, **self._request_options(call)) as response:
                    if response.is_success:
                        call.sink.begin()
                        try:
                            for chunk in response.iter_bytes(CHUNK):
                                call.sink.write(chunk)
                        finally:
                            call.sink.end()
                    else:
                        response.read()
            elif call.upload is not None:
                with call.upload.open() as handle:
                    files = {"file": (call.upload.filename, handle, "application/pdf")}
                    response = client.request(call.method, call.path, files=files)
            else:
                response = client.request(call.method, call.path, **self._request_options(call))
        except httpx.TransportError as exc:
            log.debug("Certyneo %s %s failed: %s", call.method, call.path, type(exc).__name__)
            return exc
        log.debug(
            "Certyneo %s %s -> %s in %.0f ms",
            call.method,
            call.path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response

    def test_connection(self) -> tuple[bool, str]:
        """One cheap authenticated call (the first key record); never raises."""
        try:
            page = self._run(partial(calls.get_page, "/keys", limit=1, cursor=None), TEST_BUTTON_POLICY)
        except CertyneoError as exc:
            return False, str(exc)
        except Exception as exc:  # noqa: BLE001 - the UI wants a reason, not a traceback
            return False, f"{type(exc).__name__}: {exc}"
        assert page is not None
        return (
            True,
            f"Connected to Certyneo ({self.settings.environment} environment) at {self.settings.base_url}",
        )

    # Documents ----------------------------------------------------------------------------------------

    def upload_document(
        self, source: Any, filename: str | None = None, *, reuse_since: datetime | None = None
    ) -> Document:
        """Upload a PDF from a local path or an ``ObjectStoragePath``, streamed. Checked first: exists, PDF,
        at most 25 MiB. Safe to retry: a lost answer is recovered by matching the SHA-256. With
        ``reuse_since`` (a retried task: when its first try started), the same file uploaded since then is
        returned instead of uploading it again.

        :param source: a local path, URL or ``ObjectStoragePath`` of the PDF.
        :param filename: the name Certyneo shows (default: the file's own).
        :param reuse_since: when the task's first try started, on a retry.
        """
        path, size, sha256 = inspect_pdf(source)
        upload = Upload(filename or path.name, lambda: path.open("rb"))
        return cast(
            Document, self._run(partial(calls.upload_document, upload, size, sha256, reuse_since=reuse_since))
        )

    def list_documents(self, *, page_size: int = 100) -> Iterator[Document]:
        """Every document, newest first, fetched page by page as you iterate."""
        return cast(Iterator[Document], self._iterate("/documents", [], page_size))

    def get_document(self, document_id: str) -> Document:
        """A document's metadata (name, size, pages, SHA-256).

        :param document_id: the ``doc_…`` id."""
        return cast(Document, self._run(partial(calls.get_document, document_id)))

    def delete_document(self, document_id: str) -> None:
        """Delete a document; 409 while a sent envelope uses it."""
        self._run(partial(calls.delete_document, document_id))

    # Envelopes ----------------------------------------------------------------------------------------

    def create_envelope(
        self,
        subject: str,
        document_ids: list[str],
        recipients: list[RecipientInput] | list[dict[str, Any]],
        *,
        message: str | None = None,
        signing_order: str | None = None,
        reuse_since: datetime | None = None,
    ) -> Envelope:
        """Create a DRAFT. Recipients are checked (e-mails, duplicates, a SIGNER) before any request.
        Safe to retry: a lost answer is recovered by finding the identical draft. With ``reuse_since``
        (a retried task: when its first try started), an identical unsent draft changed since then is
        returned instead of creating another one.

        :param subject: 1 to 200 characters.
        :param document_ids: ids of uploaded documents (1 to 20).
        :param recipients: ``{email, name, role, order}`` mappings (1 to 50, at least one SIGNER).
        :param message: the invitation's text (at most 5,000 characters).
        :param signing_order: ``PARALLEL`` (default) or ``SEQUENTIAL``.
        :param reuse_since: when the task's first try started, on a retry.
        """
        body = calls.envelope_body(subject, document_ids, recipients, message, signing_order)
        return cast(Envelope, self._run(partial(calls.create_envelope, body, reuse_since=reuse_since)))

    def get_envelope(self, envelope_id: str) -> Envelope:
        """An envelope's state: status, recipients and who signed when.

        :param envelope_id: the ``env_…`` id."""
        return cast(Envelope, self._run(partial(calls.get_envelope, envelope_id)))

    def update_envelope(
        self,
        envelope_id: str,
        *,
        subject: str | None = None,
        document_ids: list[str] | None = None,
        recipients: list[RecipientInput] | list[dict[str, Any]] | None = None,
        message: str | None = None,
        signing_order: str | None = None,
    ) -> Envelope:
        """Change a DRAFT (409 ``invalid_state`` once sent).

        :param envelope_id: the ``env_…`` id of a DRAFT.
        :param subject: see :meth:`create_envelope`; None leaves a field unchanged.
        :param document_ids: see :meth:`create_envelope`.
        :param recipients: see :meth:`create_envelope`.
        :param message: see :meth:`create_envelope`.
        :param signing_order: see :meth:`create_envelope`.
        """
        body = calls.envelope_body(subject, document_ids, recipients, message, signing_order, partial=True)
        return cast(Envelope, self._run(partial(calls.update_envelope, envelope_id, body)))

    def void_envelope(self, envelope_id: str) -> Envelope | None:
        """Void a SENT envelope (returns it, VOIDED) or delete a DRAFT (returns None)."""
        return cast("Envelope | None", self._run(partial(calls.delete_envelope, envelope_id)))

    def send_envelope(self, envelope_id: str) -> Envelope:
        """Send a DRAFT's invitations. Exactly once: a lost answer is resolved by reading the envelope,
        and a repeat on an envelope already past DRAFT raises ``CertyneoInvalidStateError``."""
        return cast(Envelope, self._run(partial(calls.send_envelope, envelope_id)))

    def list_envelopes(
        self,
        *,
        status: str | list[str] | None = None,
        updated_since: datetime | str | None = None,
        page_size: int = 100,
        pace: Callable[[], None] | None = None,
    ) -> Iterator[Envelope]:
        """Envelopes, newest first, optionally of some statuses or updated since a moment; lazily paged.

        :param status: one status or several (``SENT``, ``COMPLETED``…).
        :param updated_since: an aware datetime or RFC 3339 text.
        :param page_size: envelopes per request (1 to 100).
        :param pace: called before each page is requested (a budget charged per request; it may raise to
            stop the listing).
        """
        return cast(
            Iterator[Envelope],
            self._iterate("/envelopes", calls.envelope_filters(status, updated_since), page_size, pace),
        )

    def download_signed_document(
        self, envelope_id: str, destination: Any, *, overwrite: bool = False
    ) -> DownloadResult:
        """Stream the signed PDF (COMPLETED only) to a file or directory, local or object storage.

        :param envelope_id: the ``env_…`` id of a COMPLETED envelope.
        :param destination: a file or directory path, local or ``ObjectStoragePath``.
        :param overwrite: replace an existing file (default: refuse).
        """
        return self._download(envelope_id, "signed-document", destination, overwrite)

    def download_audit_trail(
        self, envelope_id: str, destination: Any, *, overwrite: bool = False
    ) -> DownloadResult:
        """Stream the eIDAS audit-trail PDF (once sent) to a file or directory.

        :param envelope_id: the ``env_…`` id of a sent envelope.
        :param destination: a file or directory path, local or ``ObjectStoragePath``.
        :param overwrite: replace an existing file (default: refuse).
        """
        return self._download(envelope_id, "audit-trail", destination, overwrite)

    def _download(self, envelope_id: str, what: str, destination: Any, overwrite: bool) -> DownloadResult:
        path, opener, commit = download_target(destination, f"{envelope_id}-{what}.pdf", overwrite)
        sink = DownloadSink(opener)
        self._run(partial(calls.download, envelope_id, what, sink))
        commit()
        return {"path": str(path), "sha256": sink.sha256.hexdigest(), "size": sink.size}

    # Webhooks and keys ----------------------------------------------------------------------------------

    def create_webhook(self, url: str, events: list[str]) -> Webhook:
        """Register a webhook; the answer holds its ``secret``, shown only this once. Never repeated.

        :param url: the receiver's absolute https URL (plain http only to this machine: a local receiver).
        :param events: among ``envelope.created``, ``envelope.completed``, ``envelope.declined``.
        """
        return cast(Webhook, self._run(partial(calls.create_webhook, url, events)))

    def list_webhooks(self, *, page_size: int = 100) -> Iterator[Webhook]:
        """Every registered webhook (never their secrets), lazily paged.

        :param page_size: webhooks per request (1 to 100)."""
        return cast(Iterator[Webhook], self._iterate("/webhooks", [], page_size))

    def delete_webhook(self, webhook_id: str) -> None:
        """Unregister a webhook.

        :param webhook_id: the ``whk_…`` id."""
        self._run(partial(calls.delete_webhook, webhook_id))

    def create_api_key(self, name: str, environment: str | None = None) -> ApiKey:
        """Create a key; its ``secret`` is in this answer only. Never repeated.

        :param name: 1 to 100 characters.
        :param environment: ``test`` or ``live`` (default: this key's).
        """
        return cast(ApiKey, self._run(partial(calls.create_key, name, environment)))

    def list_api_keys(self, *, page_size: int = 100) -> Iterator[ApiKey]:
        """Every key of this environment (never their secrets), lazily paged.

        :param page_size: keys per request (1 to 100)."""
        return cast(Iterator[ApiKey], self._iterate("/keys", [], page_size))

    def revoke_api_key(self, key_id: str) -> None:
        """Revoke a key; it answers 401 from the next request on."""
        self._run(partial(calls.revoke_key, key_id))

    def _iterate(
        self,
        path: str,
        extra: list[tuple[str, str]],
        page_size: int,
        pace: Callable[[], None] | None = None,
    ) -> Iterator[Any]:
        calls.list_params(page_size, None)
        cursor: str | None = None
        while True:
            if pace is not None:
                pace()
            page = self._run(partial(calls.get_page, path, limit=page_size, cursor=cursor, extra=extra))
            yield from page.get("data", [])
            cursor = page.get("nextCursor")
            if not cursor:
                return
