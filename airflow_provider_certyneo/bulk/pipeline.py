"""The bulk pipeline: upload, create and send every contract, as fast as the key's token bucket allows.

Each contract goes through its three requests in order; many contracts are in flight at once, and the
hook's bucket paces them all, so the run takes the token-bucket floor and draws no 429. Before doing
anything a retried run looks up, on the server, the envelopes it may already have made (same subject and
recipients, created since the run started), so a step whose journal line was lost is not done twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from airflow_provider_certyneo.bulk.journal import Journal
from airflow_provider_certyneo.bulk.manifest import Contract
from airflow_provider_certyneo.exceptions import CertyneoError, CertyneoInvalidStateError
from airflow_provider_certyneo.hooks.certyneo import CertyneoAsyncHook
from airflow_provider_certyneo.timestamps import parse_rfc3339, rfc3339

log = logging.getLogger(__name__)
SKEW = timedelta(minutes=5)


def result(
    contract: Contract,
    envelope: dict[str, Any] | None = None,
    error: str | None = None,
    retryable: bool = False,
) -> dict[str, Any]:
    return {
        "row": contract.row,
        "envelope_id": envelope["id"] if envelope else None,
        "status": envelope["status"] if envelope else "FAILED",
        "error": error,
        "retryable": retryable,
    }


async def already_made(hook: CertyneoAsyncHook, journal: Journal) -> dict[tuple[str, tuple[str, ...]], Any]:
    """Envelopes created since this run started (less a margin for clock skew), by (subject, recipients):
    what a step whose journal line was lost left behind."""
    assert journal.started is not None
    since = parse_rfc3339(journal.started, "journal start") - SKEW
    created_after = rfc3339(since)
    found: dict[tuple[str, tuple[str, ...]], Any] = {}
    async for envelope in hook.list_envelopes(updated_since=since):
        if envelope.get("createdAt", "") >= created_after:
            key = envelope["subject"], tuple(r["email"].lower() for r in envelope["recipients"])
            found.setdefault(key, envelope)
    return found


async def send_one(
    hook: CertyneoAsyncHook,
    contract: Contract,
    journal: Journal,
    existing: dict[tuple[str, tuple[str, ...]], Any],
) -> dict[str, Any]:
    state = journal.rows.get(contract.row, {})
    if state.get("status") == "sent":
        return {**result(contract), "envelope_id": state["envelope_id"], "status": "SENT"}
    envelope = existing.get(contract.key())
    if envelope is None and state.get("envelope_id"):
        envelope = dict(await hook.get_envelope(state["envelope_id"]))
    if envelope is None:
        document_id = state.get("document_id")
        if not document_id:
            document_id = (await hook.upload_document(contract.pdf))["id"]
            journal.record(contract.row, document_id=document_id)
        body = contract.body
        envelope = dict(
            await hook.create_envelope(
                body["subject"],
                [document_id],
                body["recipients"],
                message=body.get("message"),
                signing_order=body.get("signingOrder"),
            )
        )
        journal.record(contract.row, envelope_id=envelope["id"])
    if envelope["status"] == "DRAFT":
        try:
            envelope = dict(await hook.send_envelope(envelope["id"]))
        except CertyneoInvalidStateError as exc:
            if exc.current_status in (None, "DRAFT"):
                raise
            envelope = dict(await hook.get_envelope(envelope["id"]))
    journal.record(contract.row, status="sent", envelope_id=envelope["id"])
    return result(contract, envelope)


async def send_all(
    conn_id: str, contracts: list[Contract], journal: Journal, max_in_flight: int
) -> list[dict[str, Any]]:
    """Send every valid contract once; one result per row, in order, errors included."""
    async with CertyneoAsyncHook(conn_id) as hook:
        existing = await already_made(hook, journal) if journal.rows else {}
        gate = asyncio.Semaphore(max_in_flight)

        async def guarded(contract: Contract) -> dict[str, Any]:
            if contract.error is not None:
                return result(contract, error=contract.error)
            async with gate:
                try:
                    return await send_one(hook, contract, journal, existing)
                except CertyneoError as exc:
                    journal.record(contract.row, status="failed", error=str(exc))
                    return result(contract, error=str(exc), retryable=exc.retryable)

        return list(await asyncio.gather(*(guarded(c) for c in contracts)))
