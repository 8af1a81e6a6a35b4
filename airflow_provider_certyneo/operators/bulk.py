"""CertyneoBulkSendOperator: many contracts from one task, at the pace the key allows, each sent once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, conf

from airflow_provider_certyneo import xcom
from airflow_provider_certyneo.client.files import InspectedPdf
from airflow_provider_certyneo.exceptions import CertyneoError, CertyneoValidationError, CertyneoWaitError
from airflow_provider_certyneo.operators.base import CertyneoBaseOperator
from airflow_provider_certyneo.triggers.results import EnvelopeSetResult

if TYPE_CHECKING:
    from airflow.sdk import Context, XComArg

    from airflow_provider_certyneo.bulk.journal import Journal
    from airflow_provider_certyneo.bulk.manifest import Contract

SHOWN_FAILURES = 50


class CertyneoBulkSendOperator(CertyneoBaseOperator):
    """Upload, create and send many contracts from one task, paced exactly by the key's token bucket.

    Costs 3 requests per contract (upload, create, send), so N contracts take at least
    ``max(0, 3N - burst) / rate`` (about 0.6 s per contract at 100/min). Every row is reported; a bad row
    (missing file, bad e-mail…) never stops the others, and the task fails at the end naming each failed
    row and why. Resumable: progress goes to a journal, and a retried or re-run task skips what was sent,
    finishes what was half done and sends nothing twice.

    :param contracts: rows ``{"pdf", "subject", "recipients" | "signer_email" + "signer_name", "message",
        "signing_order", "row_id"}`` (e.g. from XCom). Templated.
    :param manifest: instead, a CSV or JSON-lines file with those columns (local path, URL or
        ``ObjectStoragePath``); relative PDF paths are read from the manifest's folder. Templated.
    :param row_range: send only the manifest's rows ``[start, stop)`` (counted from 0): one batch of a
        manifest mapped in batches, ``.partial(manifest=…).expand(row_range=manifest_batches(…))``. The whole
        manifest is still checked for duplicate rows; each batch keeps its own journal (by map index).
    :param journal: where progress is kept. Default: beside the manifest, in ``.certyneo/``, named after
        the DAG run and task (so a retry on another worker finds it when the manifest is on shared or object
        storage); for ``contracts`` without a manifest, under ``$AIRFLOW_HOME/certyneo-journals`` — set it
        to object storage when retries may run on another worker. Templated.
    :param max_in_flight: contracts in progress at once (the bucket, not this, sets the pace).
    :param wait_for_completion: then wait until every envelope is terminal (deferrable or not).
    :param progress_interval: seconds between two progress lines in the log ("400/1000 sent, 0 failed,
        about 6 min left at the key's rate"; only when something moved); a summary table ends the send.
    :param dry_run: preview the run instead, sending nothing (see below).
    :param expected_fingerprint: the ``fingerprint`` XCom of a preview of this run (the mapping, e.g.
        ``preview.output["fingerprint"]``, or its ``sha256`` as text). The send then refuses, before any
        request, a manifest or PDF changed since the preview. Templated.
    :param journal_task_id: the task the default journal is named after (default: this one). A preview
        names the send task here, so that it reads the journal the send will resume from.

    **Preview** (``dry_run=True``): every row is judged exactly as the send would judge it — by the same
    code, not a copy of it: the manifest's rows (subjects, e-mails, roles, recipient rules, duplicates), each
    PDF through the upload's own check (exists, is a PDF, at most 25 MiB), the journal (what an earlier try
    sent or half did) and, when the journal has rows, the one list request the send makes to find envelopes
    whose journal line was lost. No other request is made, none that changes anything, and nothing is
    written (not even the journal). It returns and logs a summary (contracts, distinct PDFs, recipients,
    already sent, each row with a problem with its field and fix, the requests the send will cost and the
    time at the key's rate), pushes its ``fingerprint`` (SHA-256 of the manifest's bytes and of each PDF),
    and fails (not retried) naming the bad rows if there are any.

    A flag rather than a separate operator: the preview and the send then take the very same arguments
    (manifest, contracts, connection, journal), so a DAG cannot preview one thing and send another by a
    typo in a second operator's parameters, and one class holds the one way rows are read and checked.
    """

    template_fields: Sequence[str] = ("contracts", "manifest", "journal", "expected_fingerprint")

    def __init__(
        self,
        *,
        contracts: list[dict[str, Any]] | XComArg | None = None,
        manifest: Any = None,
        row_range: list[int] | tuple[int, int] | None = None,
        journal: Any = None,
        max_in_flight: int = 32,
        wait_for_completion: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 60.0,
        timeout: timedelta | float | None = timedelta(days=30),
        progress_interval: float = 5.0,
        dry_run: bool = False,
        expected_fingerprint: Any = None,
        journal_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (contracts is None) == (manifest is None):
            raise ValueError(
                "pass exactly one of contracts= (a list of rows) or manifest= (a CSV or JSONL file)"
            )
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight!r}")
        self.contracts = contracts
        self.manifest = manifest
        self.row_range = row_range
        self.journal = journal
        self.max_in_flight = max_in_flight
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.progress_interval = progress_interval
        self.preview_only = dry_run  # not self.dry_run: BaseOperator.dry_run() is a method
        self.expected_fingerprint = expected_fingerprint
        self.journal_task_id = journal_task_id
        if dry_run and expected_fingerprint is not None:
            raise ValueError("expected_fingerprint is for the send that follows a preview, not the preview")
        # for lineage: the PDFs the rows name (None: not known in this instance) and the envelopes sent
        self.pdfs_read: list[Any] | None = None
        self.envelope_ids: list[str] = []

    def _journal(self, context: Context) -> Journal:
        from airflow_provider_certyneo.bulk.journal import Journal
        from airflow_provider_certyneo.client.files import as_path, safe_name

        if self.journal:
            return Journal(self.journal, read_only=self.preview_only)
        ti = context["ti"]
        mapped = f".{ti.map_index}" if ti.map_index is not None and ti.map_index >= 0 else ""
        task_id = self.journal_task_id or ti.task_id
        name = safe_name(f"{ti.dag_id}.{ti.run_id}.{task_id}{mapped}") + ".journal.jsonl"
        if self.manifest:
            manifest = as_path(self.manifest)
            location = manifest.parent / ".certyneo" / f"{safe_name(manifest.name)}.{name}"
        else:
            home = os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow"))
            location = os.path.join(home, "certyneo-journals", name)
        return Journal(location, read_only=self.preview_only)

    def _contracts(self) -> tuple[list[Contract], str]:
        """The rows (of ``row_range`` only, if set), checked, and the SHA-256 of what they were read from
        (the manifest's bytes, or the rows given as a list)."""
        from airflow_provider_certyneo.bulk.batches import parse_row_range
        from airflow_provider_certyneo.bulk.fingerprint import rows_digest
        from airflow_provider_certyneo.bulk.manifest import contracts_from_list, load_manifest

        row_range = parse_row_range(self.row_range)
        if self.manifest:
            contracts, digest = load_manifest(self.manifest)
        elif isinstance(self.contracts, list):
            contracts, digest = contracts_from_list(self.contracts), rows_digest(self.contracts)
        else:
            kind = type(self.contracts).__name__
            raise CertyneoValidationError(f"contracts must be a list of rows, got {kind}")
        if row_range is not None:
            start, stop = row_range
            if stop > len(contracts):
                raise CertyneoValidationError(
                    f"row_range {list(row_range)} goes past the manifest's {len(contracts)} rows: "
                    "plan the batches from this manifest (manifest_batches)"
                )
            contracts = contracts[start:stop]
        return contracts, digest

    def execute(self, context: Context) -> Any:
        """Send every contract once (resuming from the journal), then wait if asked; one result per row.
        With ``dry_run``, the preview's summary instead (and nothing sent)."""
        from airflow_provider_certyneo.bulk.pipeline import send_all

        contracts, source_sha256 = self._contracts()
        self.pdfs_read = [c.pdf for c in contracts if c.error is None]
        if self.preview_only:
            return self._preview(context, contracts, source_sha256)
        inspected = self._check_fingerprint(contracts, source_sha256)
        journal = self._journal(context)
        self.log.info(
            "Bulk send of %d contracts (journal: %s, %d rows already recorded)",
            len(contracts),
            journal.path,
            len(journal.rows),
        )
        results = asyncio.run(
            send_all(
                self.certyneo_conn_id,
                contracts,
                journal,
                self.max_in_flight,
                report=lambda line: self.log.info("%s", line),
                progress_interval=self.progress_interval,
                inspected=inspected,
            )
        )
        journal.flush()
        failed = [r for r in results if r["error"]]
        self.envelope_ids = [r["envelope_id"] for r in results if r["envelope_id"]]
        context["ti"].xcom_push(key=xcom.CONN_ID, value=self.certyneo_conn_id)  # the Signatures view
        context["ti"].xcom_push(key=xcom.RESULTS, value=results)
        if failed:
            self._fail(failed, len(results))
        if self.wait_for_completion:
            return self._wait([r["envelope_id"] for r in results], journal.started, context)
        return results

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the manifest and the PDFs its rows name (inputs; a preview reads them too) and the
        envelopes sent (run facet ``certyneo``). A task resumed after its wait is a new instance: it reads the
        envelope ids from the rows XCom (``execute_complete``) and the PDFs from the manifest again."""
        from airflow_provider_certyneo.lineage import operator_lineage

        pdfs = self.pdfs_read
        if pdfs is None:
            try:
                pdfs = [c.pdf for c in self._contracts()[0] if c.error is None]
            except (CertyneoError, OSError, ValueError) as exc:  # lineage never fails the task
                self.log.warning("OpenLineage: the manifest's PDFs could not be read again (%s)", exc)
                pdfs = []
        return operator_lineage(inputs=[self.manifest, *pdfs], envelope_ids=self.envelope_ids)

    def _preview(self, context: Context, contracts: list[Contract], source_sha256: str) -> dict[str, Any]:
        from airflow_provider_certyneo.bulk.fingerprint import fingerprint, inspect_all
        from airflow_provider_certyneo.bulk.preview import preview_all, summary_text

        journal = self._journal(context)
        inspected = inspect_all(contracts)
        summary = asyncio.run(preview_all(self.certyneo_conn_id, contracts, journal, inspected))
        digests = fingerprint(source_sha256, inspected)
        summary["fingerprint"] = digests["sha256"]
        source = str(self.manifest) if self.manifest else f"{len(contracts)} rows given as a list"
        summary["text"] = summary_text(summary, source)
        context["ti"].xcom_push(key=xcom.FINGERPRINT, value=digests)
        context["ti"].xcom_push(key=xcom.PREVIEW, value=summary)  # also when it fails: the problems
        self.log.info("%s", summary["text"])
        if summary["problems"]:
            rows = ", ".join(p["row"] for p in summary["problems"][:SHOWN_FAILURES])
            more = len(summary["problems"]) - SHOWN_FAILURES
            raise CertyneoValidationError(
                f"{len(summary['problems'])} of {len(contracts)} rows would not be sent: {rows}"
                + (f" … and {more} more" if more > 0 else "")
                + " (each with its field and fix in the log above); fix the manifest and preview it again"
            )
        return summary

    def _check_fingerprint(self, contracts: list[Contract], source_sha256: str) -> dict[str, InspectedPdf]:
        """With ``expected_fingerprint``: refuse, before any request, what differs from the preview. Returns
        the PDFs it checked and hashed (the send does not read them twice)."""
        if self.expected_fingerprint is None:
            return {}
        from airflow_provider_certyneo.bulk.fingerprint import differences, fingerprint, inspect_all

        if self.expected_fingerprint in ("", "None"):
            raise CertyneoValidationError(
                "expected_fingerprint is empty: the preview's 'fingerprint' XCom was not found; run the "
                "preview first (or leave expected_fingerprint out to send without one)"
            )
        inspected = inspect_all(contracts)
        changes = differences(self.expected_fingerprint, fingerprint(source_sha256, inspected))
        if changes:
            message = (
                "refusing to send: what was previewed (and approved) is not what is there now — "
                + "; ".join(changes)
                + ". Nothing was sent: preview the run again and approve the new preview."
            )
            self.log.error("%s", message)
            raise CertyneoValidationError(message)
        self.log.info("The manifest and its PDFs are those the preview saw (fingerprint matches)")
        return {name: pdf for name, pdf in inspected.items() if isinstance(pdf, InspectedPdf)}

    def _fail(self, failed: list[dict[str, Any]], total: int) -> None:
        lines = [f"  row {r['row']}: {r['error']}" for r in failed[:SHOWN_FAILURES]]
        if len(failed) > SHOWN_FAILURES:
            lines.append(f"  … and {len(failed) - SHOWN_FAILURES} more (XCom 'results' lists them all)")
        message = f"{len(failed)} of {total} contracts were not sent:\n" + "\n".join(lines)
        self.log.error("%s", message)
        if any(r["retryable"] for r in failed):
            raise AirflowException(
                message + "\n(some failures were transient: a retry sends only those rows)"
            )
        raise CertyneoValidationError(message)

    def _wait(self, envelope_ids: list[str], since: str | None, context: Context) -> list[dict[str, Any]]:
        from airflow_provider_certyneo.triggers.envelope_set import CertyneoEnvelopeSetTrigger

        trigger = CertyneoEnvelopeSetTrigger(
            envelope_ids,
            self.certyneo_conn_id,
            self.poll_interval,
            self.wait_deadline(context, self.timeout),
            known_as_of=since,
        )
        return self.defer_or_wait(context, trigger, deferrable=self.deferrable)

    def execute_complete(self, context: Context, event: Any) -> list[dict[str, Any]]:
        """Resume after the wait for the whole set: summary in XCom, failure if any is unsigned. Returns the
        rows as :meth:`execute` sent them, each with the status the wait saw, however the task waited."""
        ti = context["ti"]  # this map index's rows only: a mapped bulk task has one list per batch
        rows: list[dict[str, Any]] = (
            ti.xcom_pull(task_ids=self.task_id, key=xcom.RESULTS, map_indexes=ti.map_index) or []
        )
        self.envelope_ids = [row["envelope_id"] for row in rows if row.get("envelope_id")]
        result = EnvelopeSetResult.read(event)
        if result.status == "error":
            self.log.error("%s", result.message)
            raise CertyneoWaitError(f"waiting for the envelopes failed: {result.message}")
        context["ti"].xcom_push(key=xcom.SUMMARY, value=result.summary())
        self.log.info(
            "Signed: %d, not signed (declined/voided/expired): %d, still pending: %d",
            len(result.completed),
            len(result.failed),
            len(result.pending),
        )
        for envelope_id, reason in list(result.failed.items())[:SHOWN_FAILURES]:
            self.log.error("%s: %s", envelope_id, reason)
        if result.status != "success":
            raise CertyneoWaitError(
                f"{len(result.failed)} envelopes will not be signed and "
                f"{len(result.pending)} were still pending ({result.status})"
            )
        completed = set(result.completed)
        return [{**row, "status": "COMPLETED"} if row["envelope_id"] in completed else row for row in rows]
