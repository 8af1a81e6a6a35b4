"""CertyneoBulkSendOperator: many contracts from one task, at the pace the key allows, each sent once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, conf

from airflow_provider_certyneo import xcom
from airflow_provider_certyneo.exceptions import CertyneoValidationError, CertyneoWaitError
from airflow_provider_certyneo.operators.base import CertyneoBaseOperator
from airflow_provider_certyneo.triggers.results import EnvelopeSetResult

if TYPE_CHECKING:
    from airflow.sdk import Context, XComArg

    from airflow_provider_certyneo.bulk.journal import Journal

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
    """

    template_fields: Sequence[str] = ("contracts", "manifest", "journal")

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

    def _journal(self, context: Context) -> Journal:
        from airflow_provider_certyneo.bulk.journal import Journal
        from airflow_provider_certyneo.client.files import as_path, safe_name

        if self.journal:
            return Journal(self.journal)
        ti = context["ti"]
        mapped = f".{ti.map_index}" if ti.map_index is not None and ti.map_index >= 0 else ""
        name = safe_name(f"{ti.dag_id}.{ti.run_id}.{ti.task_id}{mapped}") + ".journal.jsonl"
        if self.manifest:
            manifest = as_path(self.manifest)
            return Journal(manifest.parent / ".certyneo" / f"{safe_name(manifest.name)}.{name}")
        home = os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow"))
        return Journal(os.path.join(home, "certyneo-journals", name))

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Send every contract once (resuming from the journal), then wait if asked; one result per row."""
        from airflow_provider_certyneo.bulk.batches import parse_row_range
        from airflow_provider_certyneo.bulk.manifest import contracts_from_list, read_manifest
        from airflow_provider_certyneo.bulk.pipeline import send_all

        row_range = parse_row_range(self.row_range)
        if self.manifest:
            contracts = read_manifest(self.manifest)
        elif isinstance(self.contracts, list):
            contracts = contracts_from_list(self.contracts)
        else:
            raise CertyneoValidationError(
                f"contracts must be a list of rows, got {type(self.contracts).__name__}"
            )
        if row_range is not None:
            start, stop = row_range
            if stop > len(contracts):
                raise CertyneoValidationError(
                    f"row_range {list(row_range)} goes past the manifest's {len(contracts)} rows: "
                    "plan the batches from this manifest (manifest_batches)"
                )
            contracts = contracts[start:stop]
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
            )
        )
        journal.flush()
        failed = [r for r in results if r["error"]]
        context["ti"].xcom_push(key=xcom.CONN_ID, value=self.certyneo_conn_id)  # the Signatures view
        context["ti"].xcom_push(key=xcom.RESULTS, value=results)
        if failed:
            self._fail(failed, len(results))
        if self.wait_for_completion:
            return self._wait([r["envelope_id"] for r in results], journal.started, context)
        return results

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
        ti = context["ti"]  # this map index's rows only: a mapped bulk task has one list per batch
        rows: list[dict[str, Any]] = (
            ti.xcom_pull(task_ids=self.task_id, key=xcom.RESULTS, map_indexes=ti.map_index) or []
        )
        completed = set(result.completed)
        return [{**row, "status": "COMPLETED"} if row["envelope_id"] in completed else row for row in rows]
