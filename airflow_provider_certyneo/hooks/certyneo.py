"""CertyneoHook (sync, for operators and ``@task`` code) and CertyneoAsyncHook (for triggers).

Both speak every route of the Certyneo API v1, pace themselves with the key's token bucket, retry what
is safe to retry and recover what is not. They differ only in how they wait and do I/O: the rules live in
:mod:`.protocol` and :mod:`.routes`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import AsyncIterator, Generator, Iterator
from datetime import datetime
from typing import Any, cast

import httpx
from airflow.sdk import BaseHook

from airflow_provider_certyneo import __version__
from airflow_provider_certyneo.exceptions import CertyneoError
from airflow_provider_certyneo.hooks import routes
from airflow_provider_certyneo.hooks.connection import CertyneoSettings, settings_from_connection
from airflow_provider_certyneo.hooks.protocol import (
    CHUNK,
    ApiCall,
    DownloadSink,
    Effect,
    Outcome,
    RetryPolicy,
    Sleep,
    Throttle,
    Upload,
)
from airflow_provider_certyneo.hooks.storage import download_target, inspect_pdf
from airflow_provider_certyneo.provider_info import CONNECTION_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_certyneo.ratelimit import TokenBucket, bucket_for, key_fingerprint
from airflow_provider_certyneo.timestamps import ServerClock
from airflow_provider_certyneo.types import (
    ApiKey,
    Document,
    DownloadResult,
    Envelope,
    RecipientInput,
    Webhook,
)

log = logging.getLogger(__name__)
USER_AGENT = f"airflow-provider-certyneo/{__version__}"


@functools.lru_cache(maxsize=2)
def tls_context(verify: bool) -> ssl.SSLContext | bool:
    """One TLS context per process: loading the CA bundle takes tens of milliseconds, too long to repeat
    for every hook, and far too long for an event loop shared by a thousand triggers."""
    return httpx.create_ssl_context(verify=True) if verify else False


class BearerAuth(httpx.Auth):
    """Adds the key to each request; its repr never shows it."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(<hidden>)"


class _CertyneoBaseHook(BaseHook):
    """What the sync and async hooks share: the connection, the settings, the retry policy, the bucket."""

    conn_name_attr = "certyneo_conn_id"
    default_conn_name = "certyneo_default"
    conn_type = "certyneo"
    hook_name = "Certyneo"

    def __init__(
        self,
        certyneo_conn_id: str = default_conn_name,
        *,
        backoff_base: float | None = None,
        backoff_cap: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.certyneo_conn_id = certyneo_conn_id
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._settings: CertyneoSettings | None = None
        self._bucket: TokenBucket | None = None
        self.server_clock = ServerClock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(certyneo_conn_id={self.certyneo_conn_id!r})"

    def _observe(self, outcome: httpx.Response | httpx.TransportError) -> None:
        if isinstance(outcome, httpx.Response):
            self.server_clock.observe(outcome.headers.get("date"), time.time())

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form for Airflow 3.1 (3.2+ reads ``ui-field-behaviour`` from provider info)."""
        return {
            "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
            "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
            "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields for Airflow 3.1's form; empty where its form libraries are not installed."""
        try:
            from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
            from wtforms import BooleanField, SelectField, StringField
        except ImportError:
            return {}
        widgets: dict[str, Any] = {}
        for name, spec in CONNECTION_FIELDS.items():
            if "boolean" in spec["schema"]["type"]:
                widgets[name] = BooleanField(spec["label"], default=spec["schema"]["default"])
            elif "enum" in spec["schema"]:
                choices = [(value or "", value or "(from the key)") for value in spec["schema"]["enum"]]
                widgets[name] = SelectField(spec["label"], choices=choices, default="")
            else:
                widgets[name] = StringField(spec["label"], widget=BS3TextFieldWidget())
        return widgets

    def _accept(self, conn: Any) -> CertyneoSettings:
        settings = settings_from_connection(conn)
        try:
            from airflow.providers.common.compat.sdk import mask_secret

            mask_secret(settings.api_key)
        except Exception:  # noqa: BLE001 - masking is best effort outside a task
            log.debug("secret masker not available here")
        self._settings = settings
        self._bucket = bucket_for(settings.api_key, settings.rate_limit_per_minute, settings.rate_limit_burst)
        log.info(
            "Certyneo connection %r: %s environment at %s (key %s…, fingerprint %s)",
            settings.conn_id,
            settings.environment,
            settings.base_url,
            f"sk_{settings.environment}_",
            key_fingerprint(settings.api_key),
        )
        if not settings.verify_ssl:
            log.warning("Certyneo connection %r: TLS certificate verification is OFF", settings.conn_id)
        return settings

    @property
    def policy(self) -> RetryPolicy:
        assert self._settings is not None
        return RetryPolicy(
            max_retries=self._settings.max_retries,
            backoff_base=self._settings.backoff_base if self.backoff_base is None else self.backoff_base,
            backoff_cap=self._settings.backoff_cap if self.backoff_cap is None else self.backoff_cap,
            max_rate_limit_wait=self._settings.max_rate_limit_wait,
        )

    def _new_client_options(self, settings: CertyneoSettings, tls: ssl.SSLContext | bool) -> dict[str, Any]:
        return {
            "base_url": settings.api_url,
            "auth": BearerAuth(settings.api_key),
            "timeout": httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout)),
            "verify": tls,
            "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"},
            "follow_redirects": False,
        }

    def _request_options(self, call: ApiCall) -> dict[str, Any]:
        options: dict[str, Any] = {"params": list(call.params) or None}
        if call.json is not None:
            options["json"] = call.json
        return options

    def envelope_url(self, envelope_id: str) -> str:
        """The envelope's page in the Certyneo dashboard."""
        base = self._settings.base_url if self._settings else "https://certyneo.com"
        return f"{base}/app/envelopes/{envelope_id}"

    @staticmethod
    def _log_wait(effect: Sleep | Throttle) -> None:
        if isinstance(effect, Throttle):
            log.warning(
                "Certyneo rate limit: %s; every request on this key waits %.2f s",
                effect.reason,
                effect.seconds,
            )
        else:
            log.warning("Certyneo: %s; retrying in %.2f s", effect.reason, effect.seconds)


class CertyneoHook(_CertyneoBaseHook):
    """Sync access to Certyneo, one pooled ``httpx.Client`` per hook.

    :param certyneo_conn_id: a ``certyneo`` connection: API key in the password, base URL in the host,
        and optional extras ``timeout``, ``max_retries``, ``rate_limit_per_minute``, ``rate_limit_burst``,
        ``verify_ssl``.
    """

    def __init__(self, certyneo_conn_id: str = _CertyneoBaseHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(certyneo_conn_id, **kwargs)
        self._client: httpx.Client | None = None

    @property
    def settings(self) -> CertyneoSettings:
        if self._settings is None:
            self._accept(self.get_connection(self.certyneo_conn_id))
        assert self._settings is not None
        return self._settings

    def get_conn(self) -> httpx.Client:
        if self._client is None:
            settings = self.settings
            self._client = httpx.Client(
                **self._new_client_options(settings, tls_context(settings.verify_ssl))
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> CertyneoHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, call: Generator[Effect, Outcome, Any]) -> Any:
        client = self.get_conn()
        assert self._bucket is not None
        try:
            effect = next(call)
            while True:
                outcome: Outcome = None
                if isinstance(effect, ApiCall):
                    outcome = self._send(client, effect)
                    self._observe(outcome)
                elif isinstance(effect, Throttle):
                    self._log_wait(effect)
                    self._bucket.drain(effect.seconds)
                else:
                    self._log_wait(effect)
                    time.sleep(effect.seconds)
                effect = call.send(outcome)
        except StopIteration as stop:
            return stop.value

    def _send(self, client: httpx.Client, call: ApiCall) -> httpx.Response | httpx.TransportError:
        assert self._bucket is not None
        wait = self._bucket.reserve()
        if wait > 0:
            time.sleep(wait)
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
            page = self._run(routes.get_page("/keys", self.policy_for_test(), 1, None))
        except CertyneoError as exc:
            return False, str(exc)
        except Exception as exc:  # noqa: BLE001 - the UI wants a reason, not a traceback
            return False, f"{type(exc).__name__}: {exc}"
        assert page is not None
        return (
            True,
            f"Connected to Certyneo ({self.settings.environment} environment) at {self.settings.base_url}",
        )

    def policy_for_test(self) -> RetryPolicy:
        self.get_conn()
        return RetryPolicy(max_retries=1, backoff_base=0.2, max_rate_limit_wait=5)

    # Documents ----------------------------------------------------------------------------------------

    def upload_document(
        self, source: Any, filename: str | None = None, *, reuse_since: datetime | None = None
    ) -> Document:
        """Upload a PDF from a local path or an ``ObjectStoragePath``, streamed. Checked first: exists, PDF,
        at most 25 MiB. Safe to retry: a lost answer is recovered by matching the SHA-256. With
        ``reuse_since`` (a retried task: when its first try started), the same file uploaded since then is
        returned instead of uploading it again."""
        path, size, sha256 = inspect_pdf(source)
        upload = Upload(filename or path.name, lambda: path.open("rb"))
        self.get_conn()
        return cast(
            Document, self._run(routes.upload_document(upload, size, sha256, self.policy, reuse_since))
        )

    def list_documents(self, *, page_size: int = 100) -> Iterator[Document]:
        """Every document, newest first, fetched page by page as you iterate."""
        return cast(Iterator[Document], self._iterate("/documents", [], page_size))

    def get_document(self, document_id: str) -> Document:
        self.get_conn()
        return cast(Document, self._run(routes.get_document(document_id, self.policy)))

    def delete_document(self, document_id: str) -> None:
        """Delete a document; 409 while a sent envelope uses it."""
        self.get_conn()
        self._run(routes.delete_document(document_id, self.policy))

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
        returned instead of creating another one."""
        body = routes.envelope_body(subject, document_ids, recipients, message, signing_order)
        self.get_conn()
        return cast(Envelope, self._run(routes.create_envelope(body, self.policy, reuse_since)))

    def get_envelope(self, envelope_id: str) -> Envelope:
        self.get_conn()
        return cast(Envelope, self._run(routes.get_envelope(envelope_id, self.policy)))

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
        """Change a DRAFT (409 ``invalid_state`` once sent)."""
        body = routes.envelope_body(subject, document_ids, recipients, message, signing_order, partial=True)
        self.get_conn()
        return cast(Envelope, self._run(routes.update_envelope(envelope_id, body, self.policy)))

    def void_envelope(self, envelope_id: str) -> Envelope | None:
        """Void a SENT envelope (returns it, VOIDED) or delete a DRAFT (returns None)."""
        self.get_conn()
        return cast("Envelope | None", self._run(routes.delete_envelope(envelope_id, self.policy)))

    def send_envelope(self, envelope_id: str) -> Envelope:
        """Send a DRAFT's invitations. Exactly once: a lost answer is resolved by reading the envelope,
        and a repeat on an envelope already past DRAFT raises ``CertyneoInvalidStateError``."""
        self.get_conn()
        return cast(Envelope, self._run(routes.send_envelope(envelope_id, self.policy)))

    def list_envelopes(
        self,
        *,
        status: str | list[str] | None = None,
        updated_since: datetime | str | None = None,
        page_size: int = 100,
    ) -> Iterator[Envelope]:
        """Envelopes, newest first, optionally of some statuses or updated since a moment; lazily paged."""
        return cast(
            Iterator[Envelope],
            self._iterate("/envelopes", routes.envelope_filters(status, updated_since), page_size),
        )

    def download_signed_document(
        self, envelope_id: str, destination: Any, *, overwrite: bool = False
    ) -> DownloadResult:
        """Stream the signed PDF (COMPLETED only) to a file or directory, local or object storage."""
        return self._download(envelope_id, "signed-document", destination, overwrite)

    def download_audit_trail(
        self, envelope_id: str, destination: Any, *, overwrite: bool = False
    ) -> DownloadResult:
        """Stream the eIDAS audit-trail PDF (once sent) to a file or directory."""
        return self._download(envelope_id, "audit-trail", destination, overwrite)

    def _download(self, envelope_id: str, what: str, destination: Any, overwrite: bool) -> DownloadResult:
        path, opener, commit = download_target(destination, f"{envelope_id}-{what}.pdf", overwrite)
        sink = DownloadSink(opener)
        self.get_conn()
        self._run(routes.download(envelope_id, what, sink, self.policy))
        commit()
        return {"path": str(path), "sha256": sink.sha256.hexdigest(), "size": sink.size}

    # Webhooks and keys ----------------------------------------------------------------------------------

    def create_webhook(self, url: str, events: list[str]) -> Webhook:
        """Register a webhook; the answer holds its ``secret``, shown only this once. Never repeated."""
        self.get_conn()
        return cast(Webhook, self._run(routes.create_webhook(url, events, self.policy)))

    def list_webhooks(self, *, page_size: int = 100) -> Iterator[Webhook]:
        return cast(Iterator[Webhook], self._iterate("/webhooks", [], page_size))

    def delete_webhook(self, webhook_id: str) -> None:
        self.get_conn()
        self._run(routes.delete_webhook(webhook_id, self.policy))

    def create_api_key(self, name: str, environment: str | None = None) -> ApiKey:
        """Create a key; its ``secret`` is in this answer only. Never repeated."""
        self.get_conn()
        return cast(ApiKey, self._run(routes.create_key(name, environment, self.policy)))

    def list_api_keys(self, *, page_size: int = 100) -> Iterator[ApiKey]:
        return cast(Iterator[ApiKey], self._iterate("/keys", [], page_size))

    def revoke_api_key(self, key_id: str) -> None:
        """Revoke a key; it answers 401 from the next request on."""
        self.get_conn()
        self._run(routes.revoke_key(key_id, self.policy))

    def _iterate(self, path: str, extra: list[tuple[str, str]], page_size: int) -> Iterator[Any]:
        routes.list_params(page_size, None)
        cursor: str | None = None
        while True:
            self.get_conn()
            page = self._run(routes.get_page(path, self.policy, page_size, cursor, extra))
            yield from page.get("data", [])
            cursor = page.get("nextCursor")
            if not cursor:
                return


class CertyneoAsyncHook(_CertyneoBaseHook):
    """Async access to Certyneo for triggers: ``httpx.AsyncClient``, the connection read with the async
    accessor, waits that yield to the event loop. Use one per trigger run and ``await hook.aclose()``."""

    def __init__(self, certyneo_conn_id: str = _CertyneoBaseHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(certyneo_conn_id, **kwargs)
        self._client: httpx.AsyncClient | None = None

    async def asettings(self) -> CertyneoSettings:
        if self._settings is None:
            from airflow.providers.common.compat.connection import get_async_connection

            self._accept(await get_async_connection(self.certyneo_conn_id, hook=self))
        assert self._settings is not None
        return self._settings

    async def get_async_conn(self) -> httpx.AsyncClient:
        if self._client is None:
            settings = await self.asettings()
            tls = await asyncio.to_thread(tls_context, settings.verify_ssl)
            self._client = httpx.AsyncClient(**self._new_client_options(settings, tls))
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> CertyneoAsyncHook:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self, call: Generator[Effect, Outcome, Any]) -> Any:
        client = await self.get_async_conn()
        assert self._bucket is not None
        try:
            effect = next(call)
            while True:
                outcome: Outcome = None
                if isinstance(effect, ApiCall):
                    outcome = await self._send(client, effect)
                    self._observe(outcome)
                elif isinstance(effect, Throttle):
                    self._log_wait(effect)
                    self._bucket.drain(effect.seconds)
                else:
                    self._log_wait(effect)
                    await asyncio.sleep(effect.seconds)
                effect = call.send(outcome)
        except StopIteration as stop:
            return stop.value

    async def _send(self, client: httpx.AsyncClient, call: ApiCall) -> httpx.Response | httpx.TransportError:
        assert self._bucket is not None
        wait = self._bucket.reserve()
        if wait > 0:
            await asyncio.sleep(wait)
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
        path, size, sha256 = inspect_pdf(source)
        upload = Upload(filename or path.name, lambda: path.open("rb"))
        await self.get_async_conn()
        call = routes.upload_document(upload, size, sha256, self.policy, reuse_since)
        return cast(Document, await self._run(call))

    def list_documents(self, *, page_size: int = 100) -> AsyncIterator[Document]:
        return self._iterate("/documents", [], page_size)

    async def get_document(self, document_id: str) -> Document:
        await self.get_async_conn()
        return cast(Document, await self._run(routes.get_document(document_id, self.policy)))

    async def delete_document(self, document_id: str) -> None:
        await self.get_async_conn()
        await self._run(routes.delete_document(document_id, self.policy))

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
        body = routes.envelope_body(subject, document_ids, recipients, message, signing_order)
        await self.get_async_conn()
        return cast(Envelope, await self._run(routes.create_envelope(body, self.policy, reuse_since)))

    async def get_envelope(self, envelope_id: str) -> Envelope:
        await self.get_async_conn()
        return cast(Envelope, await self._run(routes.get_envelope(envelope_id, self.policy)))

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
        body = routes.envelope_body(subject, document_ids, recipients, message, signing_order, partial=True)
        await self.get_async_conn()
        return cast(Envelope, await self._run(routes.update_envelope(envelope_id, body, self.policy)))

    async def void_envelope(self, envelope_id: str) -> Envelope | None:
        await self.get_async_conn()
        return cast("Envelope | None", await self._run(routes.delete_envelope(envelope_id, self.policy)))

    async def send_envelope(self, envelope_id: str) -> Envelope:
        await self.get_async_conn()
        return cast(Envelope, await self._run(routes.send_envelope(envelope_id, self.policy)))

    def list_envelopes(
        self,
        *,
        status: str | list[str] | None = None,
        updated_since: datetime | str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Envelope]:
        return self._iterate("/envelopes", routes.envelope_filters(status, updated_since), page_size)

    async def download_signed_document(
        self, envelope_id: str, destination: Any, *, overwrite: bool = False
    ) -> DownloadResult:
        return await self._download(envelope_id, "signed-document", destination, overwrite)

    async def download_audit_trail(
        self, envelope_id: str, destination: Any, *, overwrite: bool = False
    ) -> DownloadResult:
        return await self._download(envelope_id, "audit-trail", destination, overwrite)

    async def _download(
        self, envelope_id: str, what: str, destination: Any, overwrite: bool
    ) -> DownloadResult:
        path, opener, commit = download_target(destination, f"{envelope_id}-{what}.pdf", overwrite)
        sink = DownloadSink(opener)
        await self.get_async_conn()
        await self._run(routes.download(envelope_id, what, sink, self.policy))
        commit()
        return {"path": str(path), "sha256": sink.sha256.hexdigest(), "size": sink.size}

    # Webhooks and keys ----------------------------------------------------------------------------------

    async def create_webhook(self, url: str, events: list[str]) -> Webhook:
        await self.get_async_conn()
        return cast(Webhook, await self._run(routes.create_webhook(url, events, self.policy)))

    def list_webhooks(self, *, page_size: int = 100) -> AsyncIterator[Webhook]:
        return self._iterate("/webhooks", [], page_size)

    async def delete_webhook(self, webhook_id: str) -> None:
        await self.get_async_conn()
        await self._run(routes.delete_webhook(webhook_id, self.policy))

    async def create_api_key(self, name: str, environment: str | None = None) -> ApiKey:
        await self.get_async_conn()
        return cast(ApiKey, await self._run(routes.create_key(name, environment, self.policy)))

    def list_api_keys(self, *, page_size: int = 100) -> AsyncIterator[ApiKey]:
        return self._iterate("/keys", [], page_size)

    async def revoke_api_key(self, key_id: str) -> None:
        await self.get_async_conn()
        await self._run(routes.revoke_key(key_id, self.policy))

    async def _iterate(self, path: str, extra: list[tuple[str, str]], page_size: int) -> AsyncIterator[Any]:
        routes.list_params(page_size, None)
        cursor: str | None = None
        while True:
            await self.get_async_conn()
            page = await self._run(routes.get_page(path, self.policy, page_size, cursor, extra))
            for item in page.get("data", []):
                yield item
            cursor = page.get("nextCursor")
            if not cursor:
                return
