"""The bulk pipeline: upload, create and send every contract, as fast as the key's token bucket allows.

Each contract goes through its requests in order; many contracts are in flight at once, and the key's
governor paces them all, so the run takes the token-bucket floor and draws no 429. Contracts that share a
PDF share one upload (matched by SHA-256, also across a resumed run), so those cost 2 requests, not 3.
Before doing anything a retried run looks up, on the server, the envelopes it may already have made (same
subject and recipients, created since the run started), so a step whose journal line was lost is not done
twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from airflow_provider_certyneo.bulk.journal import Journal
from airflow_provider_certyneo.bulk.manifest import Contract
from airflow_provider_certyneo.bulk.progress import BulkProgress
from airflow_provider_certyneo.client.calls import CLOCK_SKEW, envelope_identity
from airflow_provider_certyneo.client.defaults import PROGRESS_INTERVAL
from airflow_provider_certyneo.client.files import InspectedPdf, inspect_pdf
from airflow_provider_certyneo.client.settings import CertyneoSettings
from airflow_provider_certyneo.client.timestamps import instant, parse_rfc3339
from airflow_provider_certyneo.exceptions import CertyneoError, CertyneoInvalidStateError
from airflow_provider_certyneo.governor.governor import key_fingerprint
from airflow_provider_certyneo.hooks.certyneo_async import CertyneoAsyncHook

log = logging.getLogger(__name__)


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
    since = parse_rfc3339(journal.started, "journal start") - CLOCK_SKEW
    found: dict[tuple[str, tuple[str, ...]], Any] = {}
    async for envelope in hook.list_envelopes(updated_since=since):
        created = instant(envelope.get("createdAt"))
        if created is not None and created >= since:
            found.setdefault(envelope_identity(envelope), envelope)
    return found


class SharedUploads:
    """One upload per distinct PDF in a run, found by SHA-256; a resumed run starts from the uploads its
    journal recorded. Only uploads made with the same key (and so the same environment) are reused: a
    document is invisible to any other key."""

    def __init__(
        self,
        hook: CertyneoAsyncHook,
        journal: Journal,
        owner: str,
        progress: BulkProgress | None = None,
        inspected: dict[str, InspectedPdf] | None = None,
    ) -> None:
        self.hook = hook
        self.progress = progress
        self.owner = owner
        self._inspected: dict[str, asyncio.Future[InspectedPdf]] = {}
        self._documents: dict[str, asyncio.Future[str]] = {}
        loop = asyncio.get_running_loop()
        for name, pdf in (inspected or {}).items():  # checked already (a fingerprint's check): not read again
            self._inspected[name] = loop.create_future()
            self._inspected[name].set_result(pdf)
        for state in journal.rows.values():
            digest, document_id = state.get("document_sha256"), state.get("document_id")
            if (
                digest
                and document_id
                and state.get("document_owner") == owner
                and digest not in self._documents
            ):
                self._documents[digest] = loop.create_future()
                self._documents[digest].set_result(document_id)

    def uploaded(self, digest: str) -> bool:
        """Whether a PDF with this SHA-256 is uploaded already (by this run or, per the journal, an earlier
        try with this key)."""
        return digest in self._documents

    def owns(self, state: dict[str, Any]) -> bool:
        """Whether a journal row's document was uploaded with this key (rows from before owners: yes)."""
        return state.get("document_owner", self.owner) == self.owner

    async def inspect(self, source: Any) -> InspectedPdf:
        """The file checked and hashed once per run (in a thread), whatever the number of rows naming it."""
        name = str(source)
        inspection = self._inspected.get(name)
        if inspection is None:
            inspection = self._inspected[name] = asyncio.ensure_future(asyncio.to_thread(inspect_pdf, source))
        return await asyncio.shield(inspection)

    async def document_id(self, pdf: InspectedPdf) -> str:
        digest = pdf.sha256
        future = self._documents.get(digest)
        if future is None:
            future = self._documents[digest] = asyncio.get_running_loop().create_future()
            try:
                future.set_result((await self.hook.upload_inspected(pdf))["id"])
                if self.progress is not None:
                    self.progress.uploaded()
            except BaseException as exc:
                del self._documents[digest]
                future.set_exception(exc)
                future.exception()
                raise
        return await asyncio.shield(future)


async def send_one(
    hook: CertyneoAsyncHook,
    contract: Contract,
    journal: Journal,
    existing: dict[tuple[str, tuple[str, ...]], Any],
    uploads: SharedUploads,
) -> dict[str, Any]:
    state = journal.rows.get(contract.row, {})
    if state.get("status") == "sent":
        return {**result(contract), "envelope_id": state["envelope_id"], "status": "SENT"}
    envelope = existing.get(contract.key())
    if envelope is None and state.get("envelope_id"):
        envelope = dict(await hook.get_envelope(state["envelope_id"]))
    if envelope is None:
        document_id = state.get("document_id") if uploads.owns(state) else None
        if not document_id:
            pdf = await uploads.inspect(contract.pdf)
            document_id = await uploads.document_id(pdf)
            journal.record(
                contract.row,
                document_id=document_id,
                document_sha256=pdf.sha256,
                document_owner=uploads.owner,
            )
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


def owner_of(settings: CertyneoSettings) -> str:
    """Who an upload belongs to in the journal: the key's environment and fingerprint (never the key)."""
    return f"{settings.environment}:{key_fingerprint(settings.api_key)}"


def _uploads_needed(contracts: list[Contract], journal: Journal) -> int:
    """Distinct PDFs of the rows not sent yet (an estimate for the time left: shared ones upload once)."""
    pending = {
        str(c.pdf)
        for c in contracts
        if c.error is None and not journal.rows.get(c.row, {}).get("document_id")
    }
    return len(pending)


async def send_all(
    conn_id: str,
    contracts: list[Contract],
    journal: Journal,
    max_in_flight: int,
    report: Callable[[str], None] | None = None,
    progress_interval: float = PROGRESS_INTERVAL,
    inspected: dict[str, InspectedPdf] | None = None,
) -> list[dict[str, Any]]:
    """Send every valid contract once; one result per row, in order, errors included. With ``report``, a
    progress line goes to it every ``progress_interval`` seconds while something moves, and the summary
    table at the end. ``inspected``: PDFs checked and hashed already, by path (not read twice)."""
    async with CertyneoAsyncHook(conn_id) as hook:
        settings = await hook.asettings()
        progress = BulkProgress(
            len(contracts), settings.rate_limit_per_minute, _uploads_needed(contracts, journal)
        )
        uploads = SharedUploads(hook, journal, owner_of(settings), progress, inspected)
        existing = await already_made(hook, journal) if journal.rows else {}
        gate = asyncio.Semaphore(max_in_flight)

        async def guarded(contract: Contract) -> dict[str, Any]:
            outcome = await attempt(contract)
            if outcome["error"]:
                progress.failed += 1
            else:
                progress.sent += 1
            return outcome

        async def attempt(contract: Contract) -> dict[str, Any]:
            if contract.error is not None:
                return result(contract, error=contract.error)
            if journal.rows.get(contract.row, {}).get("status") == "sent":
                progress.resumed += 1
            async with gate:
                try:
                    return await send_one(hook, contract, journal, existing, uploads)
                except CertyneoError as exc:
                    journal.record(contract.row, status="failed", error=str(exc))
                    return result(contract, error=str(exc), retryable=exc.retryable)

        reporter = asyncio.create_task(progress.report(report, progress_interval)) if report else None
        try:
            results = list(await asyncio.gather(*(guarded(c) for c in contracts)))
        finally:
            if reporter is not None:
                reporter.cancel()
                await asyncio.gather(reporter, return_exceptions=True)
        if report is not None:
            report(progress.line())
            report(progress.summary(results))
        return results
