"""The contract's 18 routes as calls, each with its validation and its retry safety, shared by both hooks.

Every function returns a generator for :mod:`~airflow_provider_certyneo.client.protocol`; nothing here
does I/O. POSTs that are unsafe to repeat say how their lost answers are recovered:

* upload: the newest documents are searched for the same SHA-256, name and size;
* create envelope: the newest drafts are searched for the same subject, documents and recipients;
* both take ``reuse_since`` for a retried task: what an earlier try made since then is used, not made again;
* send: the envelope is read; anything past DRAFT means the invitation went out (exactly once);
* void/delete: the envelope or document is read; VOIDED or gone means done;
* delete webhook / revoke key: the webhooks or keys are listed; gone, or ``revokedAt`` set, means done;
* creating a webhook or a key is never repeated: its secret is shown only in the lost answer.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any
from urllib.parse import quote

from airflow_provider_certyneo.client import validation
from airflow_provider_certyneo.client.protocol import (
    Answer,
    ApiCall,
    DownloadSink,
    Effect,
    Recovered,
    RetryPolicy,
    Upload,
    call_json,
    perform,
)
from airflow_provider_certyneo.client.timestamps import instant, rfc3339
from airflow_provider_certyneo.exceptions import CertyneoNotFoundError, CertyneoValidationError

Call = Generator[Effect, Answer, Any]
# A route awaiting only its retry policy (``functools.partial`` of a function below): what the hooks run.
Route = Callable[..., Call]
LIST_PAGE = 100
CLOCK_SKEW = timedelta(minutes=5)


def object_path(kind: str, object_id: Any, suffix: str = "") -> str:
    return f"/{kind}s/{quote(validation.check_id(kind, object_id), safe='')}{suffix}"


def list_params(
    limit: int, cursor: str | None, extra: Iterable[tuple[str, str]] = ()
) -> tuple[tuple[str, str], ...]:
    params = [("limit", str(validation.check_page_size(limit))), *extra]
    if cursor:
        params.append(("cursor", cursor))
    return tuple(params)


def get_page(
    path: str, policy: RetryPolicy, limit: int, cursor: str | None, extra: Iterable[tuple[str, str]] = ()
) -> Call:
    page = yield from call_json(ApiCall("GET", path, params=list_params(limit, cursor, extra)), policy)
    return page


def find_newest(
    path: str,
    policy: RetryPolicy,
    wanted: Callable[[dict[str, Any]], bool],
    filters: Iterable[tuple[str, str]] = (),
    too_old: Callable[[dict[str, Any]], bool] = lambda item: False,
) -> Call:
    """The first (newest) listed item that is ``wanted``, paging on until the list ends or an item is
    ``too_old``; None when there is none."""
    cursor = None
    while True:
        page = yield from get_page(path, policy, LIST_PAGE, cursor, filters)
        for item in page.get("data", []):
            if too_old(item):
                return None
            if wanted(item):
                return item
        cursor = page.get("nextCursor")
        if not cursor:
            return None


Finder = Callable[[datetime, RetryPolicy], Call]


def post_once(call: ApiCall, policy: RetryPolicy, find: Finder, reuse_since: datetime | None) -> Call:
    """A POST that creates something and must never create it twice. ``find(since, policy)`` looks for what
    such a POST made since then: with ``reuse_since`` (a retried task), what an earlier try made is returned
    instead of posting; a lost answer is recovered by finding what this POST made."""
    started = datetime.now(timezone.utc)
    if reuse_since is not None:
        earlier = yield from find(reuse_since, policy)
        if earlier is not None:
            return earlier

    def recover(policy: RetryPolicy) -> Call:
        found = yield from find(started, policy)
        return None if found is None else Recovered(found)

    created = yield from call_json(replace(call, safe_to_repeat=False, recover=recover), policy)
    return created


# Documents --------------------------------------------------------------------------------------------


def find_identical_document(
    filename: str, size: int, sha256: str, since: datetime, policy: RetryPolicy
) -> Call:
    """The newest document uploaded since ``since`` with the same name, size and SHA-256, or None. The list
    is newest first, so the search ends at the first document created before ``since`` (less the clock
    skew), or without a readable ``createdAt``."""
    oldest = since - CLOCK_SKEW

    def too_old(document: dict[str, Any]) -> bool:
        created = instant(document.get("createdAt"))
        return created is None or created < oldest

    document = yield from find_newest(
        "/documents",
        policy,
        wanted=lambda d: (d.get("sha256"), d.get("size"), d.get("filename")) == (sha256, size, filename),
        too_old=too_old,
    )
    return document


def upload_document(
    upload: Upload, size: int, sha256: str, policy: RetryPolicy, reuse_since: datetime | None = None
) -> Call:
    find = partial(find_identical_document, upload.filename, size, sha256)
    document = yield from post_once(ApiCall("POST", "/documents", upload=upload), policy, find, reuse_since)
    return document


def get_document(document_id: str, policy: RetryPolicy) -> Call:
    document = yield from call_json(ApiCall("GET", object_path("document", document_id)), policy)
    return document


def delete_document(document_id: str, policy: RetryPolicy) -> Call:
    path = object_path("document", document_id)

    def recover(policy: RetryPolicy) -> Call:
        try:
            yield from call_json(ApiCall("GET", path), policy)
        except CertyneoNotFoundError:
            return Recovered(None)
        return None

    yield from call_json(ApiCall("DELETE", path, safe_to_repeat=False, recover=recover), policy)


# Envelopes --------------------------------------------------------------------------------------------


def envelope_body(
    subject: Any,
    document_ids: Any,
    recipients: Any,
    message: Any,
    signing_order: Any,
    partial: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if subject is not None or not partial:
        body["subject"] = validation.check_subject(subject)
    if document_ids is not None or not partial:
        body["documentIds"] = validation.check_document_ids(document_ids)
    if recipients is not None or not partial:
        body["recipients"] = validation.check_recipients(recipients)
    if message is not None:
        body["message"] = validation.check_message(message)
    if signing_order is not None:
        body["signingOrder"] = validation.check_signing_order(signing_order)
    return body


def envelope_identity(envelope: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """What makes two envelopes (or an envelope and a request body) the same contract here: the subject and
    the recipients' e-mails, in order. Used to find what a lost answer or an earlier try made."""
    recipients = envelope.get("recipients") or []
    return envelope.get("subject", ""), tuple(str(r.get("email", "")).lower() for r in recipients)


def same_envelope(envelope: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    return envelope_identity(envelope) == envelope_identity(body) and envelope.get("documentIds") == body.get(
        "documentIds"
    )


def find_identical_draft(body: dict[str, Any], since: datetime, policy: RetryPolicy) -> Call:
    """The newest DRAFT changed since ``since`` with the same subject, documents and recipients, or None."""
    filters = (("status", "DRAFT"), ("updatedSince", rfc3339(since - CLOCK_SKEW)))
    envelope = yield from find_newest("/envelopes", policy, lambda e: same_envelope(e, body), filters)
    return envelope


def create_envelope(body: dict[str, Any], policy: RetryPolicy, reuse_since: datetime | None = None) -> Call:
    find = partial(find_identical_draft, body)
    envelope = yield from post_once(ApiCall("POST", "/envelopes", json=body), policy, find, reuse_since)
    return envelope


def get_envelope(envelope_id: str, policy: RetryPolicy) -> Call:
    envelope = yield from call_json(ApiCall("GET", object_path("envelope", envelope_id)), policy)
    return envelope


def update_envelope(envelope_id: str, body: dict[str, Any], policy: RetryPolicy) -> Call:
    if not body:
        raise CertyneoValidationError(
            "nothing to update: pass at least one of subject, message, "
            "document_ids, recipients, signing_order"
        )
    call = ApiCall("PATCH", object_path("envelope", envelope_id), json=body)
    envelope = yield from call_json(call, policy)
    return envelope


def delete_envelope(envelope_id: str, policy: RetryPolicy) -> Call:
    """Returns the VOIDED envelope, or None when a DRAFT was deleted."""
    path = object_path("envelope", envelope_id)

    def recover(policy: RetryPolicy) -> Call:
        try:
            envelope = yield from call_json(ApiCall("GET", path), policy)
        except CertyneoNotFoundError:
            return Recovered(None)
        return Recovered(envelope) if envelope.get("status") == "VOIDED" else None

    envelope = yield from call_json(ApiCall("DELETE", path, safe_to_repeat=False, recover=recover), policy)
    return envelope


def send_envelope(envelope_id: str, policy: RetryPolicy) -> Call:
    path = object_path("envelope", envelope_id)

    def recover(policy: RetryPolicy) -> Call:
        envelope = yield from call_json(ApiCall("GET", path), policy)
        return Recovered(envelope) if envelope.get("status") != "DRAFT" else None

    call = ApiCall("POST", f"{path}/send", safe_to_repeat=False, recover=recover)
    envelope = yield from call_json(call, policy)
    return envelope


def download(envelope_id: str, what: str, sink: DownloadSink, policy: RetryPolicy) -> Call:
    yield from perform(ApiCall("GET", object_path("envelope", envelope_id, f"/{what}"), sink=sink), policy)


def envelope_filters(
    statuses: Iterable[str] | str | None, updated_since: datetime | str | None
) -> list[tuple[str, str]]:
    extra: list[tuple[str, str]] = []
    if isinstance(statuses, str):
        statuses = [statuses]
    for status in statuses or ():
        extra.append(("status", str(status).upper()))
    if isinstance(updated_since, datetime):
        extra.append(("updatedSince", rfc3339(validation.check_aware("updated_since", updated_since))))
    elif updated_since:
        extra.append(("updatedSince", str(updated_since)))
    return extra


# Webhooks and keys --------------------------------------------------------------------------------------


def create_webhook(url: str, events: list[str], policy: RetryPolicy) -> Call:
    url, events = validation.check_webhook(url, events)
    advice = "List the webhooks and delete any duplicate; the secret of a lost registration cannot be read."
    call = ApiCall(
        "POST",
        "/webhooks",
        json={"url": url, "events": list(events)},
        safe_to_repeat=False,
        unknown_advice=advice,
    )
    webhook = yield from call_json(call, policy)
    return webhook


def find_by_id(path: str, object_id: str, policy: RetryPolicy) -> Call:
    """The listed item of ``path`` with this id, or None: webhooks and keys have no ``GET /{id}`` route."""
    item = yield from find_newest(path, policy, lambda item: item.get("id") == object_id)
    return item


def delete_webhook(webhook_id: str, policy: RetryPolicy) -> Call:
    """Unsafe to repeat: a second DELETE answers 404 although the first one deleted it. A lost answer is
    recovered by listing the webhooks: gone means done."""
    path = object_path("webhook", webhook_id)

    def recover(policy: RetryPolicy) -> Call:
        webhook = yield from find_by_id("/webhooks", webhook_id, policy)
        return Recovered(None) if webhook is None else None

    yield from call_json(ApiCall("DELETE", path, safe_to_repeat=False, recover=recover), policy)


def create_key(name: str, environment: str | None, policy: RetryPolicy) -> Call:
    validation.check_key_request(name, environment)
    body: dict[str, Any] = {"name": name}
    if environment is not None:
        body["environment"] = environment
    advice = "List the keys and revoke any you did not expect; a lost key secret cannot be read again."
    call = ApiCall("POST", "/keys", json=body, safe_to_repeat=False, unknown_advice=advice)
    key = yield from call_json(call, policy)
    return key


def revoke_key(key_id: str, policy: RetryPolicy) -> Call:
    """Unsafe to repeat: the contract does not say what a second DELETE answers (a server may say 404). A
    lost answer is recovered by reading the key's record in ``GET /keys``: ``revokedAt`` set means done. Not
    listed at all is left to the repeated DELETE to report (404)."""
    path = object_path("key", key_id)

    def recover(policy: RetryPolicy) -> Call:
        key = yield from find_by_id("/keys", key_id, policy)
        return Recovered(None) if key is not None and key.get("revokedAt") else None

    yield from call_json(ApiCall("DELETE", path, safe_to_repeat=False, recover=recover), policy)
