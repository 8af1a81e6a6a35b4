"""CertyneoAsyncHook: the Certyneo API for triggers, on the event loop (see :mod:`.certyneo`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any, cast

import httpx

from airflow_provider_certyneo.client import calls
from airflow_provider_certyneo.client.calls import Route
from airflow_provider_certyneo.client.files import InspectedPdf, download_target, inspect_pdf
from airflow_provider_certyneo.client.protocol import (
    CHUNK,
    Answer,
    ApiCall,
    DownloadSink,
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
from airflow_provider_certyneo.hooks.base import CertyneoBaseHook, tls_context

log = logging.getLogger(__name__)


class CertyneoAsyncHook(CertyneoBaseHook):
    """Async access to Certyneo for triggers: ``httpx.AsyncClient``, the connection read with the async
    accessor, waits that yield to the event loop. Use one per trigger run and ``await hook.aclose()``."""

    def __init__(self, certyneo_conn_id: str = CertyneoBaseHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(certyneo_conn_id, **kwargs)
        self._client: httpx.AsyncClient | None = None

    async def asettings(self) -> CertyneoSettings:
        """The connection's settings, read once with the async accessor (never blocks the loop)."""
        if self._settings is None:
            from airflow.providers.common.compat.connection import get_async_connection

            self._load_settings(await get_async_connection(self.certyneo_conn_id, hook=self))
        assert self._settings is not None
        return self._settings

    async def get_async_conn(self) -> httpx.AsyncClient:
        """The ``httpx.AsyncClient`` of this hook, made on first use."""
        if self._client is None:
            settings = await self.asettings()
            tls = await asyncio.to_thread(tls_context, settings.verify_ssl)
            self._client = httpx.AsyncClient(**self._new_client_options(settings, tls))
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> CertyneoAsyncHook:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self, route: Route) -> Any:
        """Like :meth:`CertyneoHook._run`, awaited: the event loop is never blocked."""
        client = await self.get_async_conn()
        assert self._governor is not None
        call = route(policy=self.policy)
        try:
            effect = next(call)
            while True:
                outcome: Answer = None
                if isinstance(effect, ApiCall):
                    outcome = await self._send(client, effect)
                    self._observe(outcome)
                elif isinstance(effect, Throttle):
                    self._log_wait(effect)
                    await self._governor.adrain(effect.seconds)
                else:
                    self._log_wait(effect)
                    await asyncio.sleep(effect.seconds)
                effect = call.send(outcome)
        except StopIteration as stop:
            return stop.value

    async def _send(self, client: httpx.AsyncClient, call: ApiCall) -> httpx.Response | httpx.TransportError:
        assert self._governor is not None
        await self._governor.apace()
        try:
            if call.sink is not None:
                async with client.stream(call.method, call.path, **self._request_options(call)) as response:
                    if response.is_success:
                        call.sink.begin()
                        try:
                            async for chunk in response.aiter_bytes(CHUNK):
                                call.sink.write(chunk)
                        finally:
                            call.sink.end()
                    else:
                        await response.aread()
                return response
            if call.upload is not None:
                with call.upload.open() as handle:
                    files = {"file": (call.upload.filename, handle, "application/pdf")}
                    return await client.request(call.method, call.path, files=files)
            return await client.request(call.method, call.path, **self._request_options(call))
        except httpx.TransportError as exc:
            return exc

    # Documents ----------------------------------------------------------------------------------------

    async def upload_document(
        self, source: Any, filename: str | None = None, *, reuse_since: datetime | None = None
    ) -> Document:
        """Like :meth:`CertyneoHook.upload_document`, awaited (the file is checked in a thread)."""
        inspected = await asyncio.to_thread(inspect_pdf, source)
        return await self.upload_inspected(inspected, filename, reuse_since=reuse_since)

    async def upload_inspected(
        self, pdf: InspectedPdf, filename: str | None = None, *, reuse_since: datetime | None = None
    ) -> Document:
        """Upload a PDF already checked by :func:`~airflow_provider_certyneo.client.files.inspect_pdf`:
        callers that hash files to match them (a bulk run sharing uploads) read each file once."""
        upload = Upload(filename or pdf.path.name, lambda: pdf.path.open("rb"))
        call = partial(calls.upload_document, upload, pdf.size, pdf.sha256, reuse_since=reuse_since)
        return cast(Document, await self._run(call))

    def list_documents(self, *, page_size: int = 100) -> AsyncIterator[Document]:
        """Like :meth:`CertyneoHook.list_documents`, awaited."""
        return self._iterate("/documents", [], page_size)

    async def get_document(self, document_id: str) -> Document:
        """Like :meth:`CertyneoHook.get_document`, awaited."""
        return cast(Document, await self._run(partial(calls.get_document, document_id)))

    async def delete_document(self, document_id: str) -> None:
        """Like :meth:`CertyneoHook.delete_document`, awaited."""
        await self._run(partial(calls.delete_document, document_id))

    # Envelopes ----------------------------------------------------------------------------------------

    async def create_envelope(
        self,
        subject: str,
        document_ids: list[str],
        recipients: list[RecipientInput] | list[dict[str, Any]],
        *,
        message: str | None = None,
        signing_order: str | None = None,
        reuse_since: datetime | None = None,
    ) -> Envelope:
        """Like :meth:`CertyneoHook.create_envelope`, awaited."""
        body = calls.envelope_body(subject, document_ids, recipients, message, signing_order)
        return cast(Envelope, await self._run(partial(calls.create_envelope, body, reuse_since=reuse_since)))

    async def get_envelope(self, envelope_id: str) -> Envelope:
        """Like :meth:`CertyneoHook.get_envelope`, awaited."""
        return cast(Envelope, await self._run(partial(calls.get_envelope, envelope_id)))

    async def update_envelope(
        self,
        envelope_id: str,
        *,
        subject: str | None = None,
        document_ids: list[str] | None = None,
        recipients: list[RecipientInput] | list[dict[str, Any]] | None = None,
        message: str | None = None,
        signing_order: str | None = None,
    ) -> Envelope:
        """Like :meth:`CertyneoHook.update_envelope`, awaited."""
        body = calls.envelope_body(subject, document_ids, recipients, message, signing_order, partial=True)
        return cast(Envelope, await self._run(partial(calls.update_envelope, envelope_id, body)))

    async def void_envelope(self, envelope_id: str) -> Envelope | None:
        """Like :meth:`CertyneoHook.void_envelope`, awaited."""
        return cast("Envelope | None", await self._run(partial(calls.delete_envelope, envelope_id)))

    async def send_envelope(self, envelope_id: str) -> Envelope:
        """Like :meth:`CertyneoHook.send_envelope`, awaited."""
        return cast(Envelope, await self._run(partial(calls.send_envelope, envelope_id)))

    def list_envelopes(
        self,
        *,
        status: str | list[str] | None = None,
        updated_since: datetime | str | None = None,
        page_size: int = 100,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[Envelope]:
        """Like :meth:`CertyneoHook.list_envelopes`, awaited.

        :param pace: awaited before each page is requested (a poll budget charged per request)."""
        return self._iterate("/envelopes", calls.envelope_filters(status, updated_since), page_size, pace)

    async def download_signed_document(
        self, envelope_id: str, destination: Any, *, overwrite: bool = False
    ) -> DownloadResult:
        """Like :meth:`CertyneoHook.download_signed_document`, awaited."""
        return await self._download(envelope_id, "signed-document", destination, overwrite)

    async def download_audit_trail(
        self, envelope_id: str, destination: Any, *, overwrite: bool = False
    ) -> DownloadResult:
        """Like :meth:`CertyneoHook.download_audit_trail`, awaited."""
        return await self._download(envelope_id, "audit-trail", destination, overwrite)

    async def _download(
        self, envelope_id: str, what: str, destination: Any, overwrite: bool
    ) -> DownloadResult:
        path, opener, commit = download_target(destination, f"{envelope_id}-{what}.pdf", overwrite)
        sink = DownloadSink(opener)
        await self._run(partial(calls.download, envelope_id, what, sink))
        commit()
        return {"path": str(path), "sha256": sink.sha256.hexdigest(), "size": sink.size}

    # Webhooks and keys ----------------------------------------------------------------------------------

    async def create_webhook(self, url: str, events: list[str]) -> Webhook:
        """Like :meth:`CertyneoHook.create_webhook`, awaited."""
        return cast(Webhook, await self._run(partial(calls.create_webhook, url, events)))

    def list_webhooks(self, *, page_size: int = 100) -> AsyncIterator[Webhook]:
        """Like :meth:`CertyneoHook.list_webhooks`, awaited."""
        return self._iterate("/webhooks", [], page_size)

    async def delete_webhook(self, webhook_id: str) -> None:
        """Like :meth:`CertyneoHook.delete_webhook`, awaited."""
        await self._run(partial(calls.delete_webhook, webhook_id))

    async def create_api_key(self, name: str, environment: str | None = None) -> ApiKey:
        """Like :meth:`CertyneoHook.create_api_key`, awaited."""
        return cast(ApiKey, await self._run(partial(calls.create_key, name, environment)))

    def list_api_keys(self, *, page_size: int = 100) -> AsyncIterator[ApiKey]:
        """Like :meth:`CertyneoHook.list_api_keys`, awaited."""
        return self._iterate("/keys", [], page_size)

    async def revoke_api_key(self, key_id: str) -> None:
        """Like :meth:`CertyneoHook.revoke_api_key`, awaited."""
        await self._run(partial(calls.revoke_key, key_id))

    async def _iterate(
        self,
        path: str,
        extra: list[tuple[str, str]],
        page_size: int,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[Any]:
        calls.list_params(page_size, None)
        cursor: str | None = None
        while True:
            if pace is not None:
                await pace()
            page = await self._run(partial(calls.get_page, path, limit=page_size, cursor=cursor, extra=extra))
            for item in page.get("data", []):
                yield item
            cursor = page.get("nextCursor")
            if not cursor:
                return
