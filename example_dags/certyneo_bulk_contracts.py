"""Bulk contracts from a CSV manifest of clients, two ways, each followed by a summary of who signed.

``certyneo_bulk_mapped``: dynamic task mapping — one upload per distinct PDF (clients who get the same
PDF share it, matched by SHA-256), then one create and one deferred send-and-wait task per client. Every
API-calling task runs in the ``certyneo_api`` pool, sized for the key (create it with
``airflow pools set certyneo_api 8 "Certyneo key: 100 requests/min"``; leave *include deferred* off so that
waiting tasks hold no slot: all waiting triggers of a key share one poller). The workers of a machine share
the key's pace (on several hosts, share it through Redis: see the README). Cost: 2 requests per contract
(3 when each has its own PDF), plus about one request per poll interval for all the waiting ones together.

``certyneo_bulk_operator``: preview → approval → send. The preview (``dry_run=True``) checks every row as
the send will and sends nothing; a person reads its summary in the Airflow UI (Required actions, or the
task's page) and approves or rejects (Airflow's ``ApprovalOperator``, Airflow 3.1+; a rejected run sends
nothing). The send — one CertyneoBulkSendOperator task, the same requests per contract (one upload per
distinct PDF), paced by the key's governor (no 429s), resumable from its journal, then one deferred wait
for the whole set — refuses a manifest or PDF changed since the preview. Where Airflow has no
``ApprovalOperator``, the DAG still parses and runs, preview then send, and the ``approve`` task logs that
nothing was approved.
At Certyneo's 100 requests/min, 2,000 contracts take about an hour either way: the limit decides.
"""

from __future__ import annotations

import csv
import hashlib
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowOptionalProviderFeatureException
from airflow.sdk import DAG, XComArg, task

from airflow_provider_certyneo.operators.bulk import CertyneoBulkSendOperator
from airflow_provider_certyneo.operators.document import CertyneoUploadDocumentOperator
from airflow_provider_certyneo.operators.envelope import (
    CertyneoCreateEnvelopeOperator,
    CertyneoSendEnvelopeOperator,
)

MANIFEST = os.environ.get("CERTYNEO_BULK_MANIFEST", str(Path(__file__).parent / "files" / "clients.csv"))
POOL = os.environ.get("CERTYNEO_POOL", "certyneo_api")
POLL_INTERVAL = float(os.environ.get("CERTYNEO_POLL_INTERVAL", "300"))
START = pendulum.datetime(2026, 1, 1, tz="UTC")
MONTHLY = "0 6 1 * *"
TAGS = ["certyneo", "example", "bulk"]
# A try that the scheduler fails by mistake (README, Troubleshooting: an upstream race when a wait ends
# soon after deferring) is retried: upload and create reuse what an earlier try made, a send is exactly once
# and an envelope already COMPLETED returns at once.
RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=15)}
try:  # Airflow 3.1+ (apache-airflow-providers-standard's human-in-the-loop operators)
    from airflow.providers.standard.operators.hitl import ApprovalOperator
except (ImportError, AirflowOptionalProviderFeatureException):  # no such module, or it refuses below 3.1
    ApprovalOperator = None  # type: ignore[assignment,misc]


@task(trigger_rule="one_failed")
def fail_if_any_task_failed() -> None:
    """``summarize`` runs whatever happened (all_done) and succeeds: without this leaf, a run whose contracts
    failed would be green."""
    raise AirflowFailException("some tasks of this run failed: see the failed task instances")


@task(trigger_rule="all_done")
def summarize(envelope_ids: list[str], started: str) -> dict[str, Any]:
    """Who signed, who declined (and why), who is still pending: one list request per 100 envelopes."""
    from airflow_provider_certyneo.client.outcomes import describe
    from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

    wanted = set(envelope_ids)
    seen: dict[str, dict[str, Any]] = {}
    with CertyneoHook() as hook:
        for listed in hook.list_envelopes(updated_since=started):
            if listed["id"] in wanted:
                seen.setdefault(listed["id"], dict(listed))
    summary: dict[str, Any] = {"signed": [], "not_signed": [], "pending": []}
    for envelope_id in envelope_ids:
        envelope = seen.get(envelope_id)
        status = envelope["status"] if envelope else "UNKNOWN"
        who = ", ".join(r["email"] for r in envelope["recipients"]) if envelope else envelope_id
        if status == "COMPLETED":
            summary["signed"].append(who)
        elif status in ("DECLINED", "VOIDED", "EXPIRED"):
            summary["not_signed"].append(describe(envelope or {}))
        else:
            summary["pending"].append(who)
    print(f"Signed ({len(summary['signed'])}): {', '.join(summary['signed'])}")
    for line in summary["not_signed"]:
        print(f"Not signed: {line}")
    print(f"Pending ({len(summary['pending'])}): {', '.join(summary['pending'])}")
    return summary


with DAG(
    dag_id="certyneo_bulk_mapped",
    schedule=MONTHLY,
    start_date=START,
    catchup=False,
    default_args=RETRIES,
    tags=TAGS,
    params={"manifest": MANIFEST},
) as mapped_dag:

    @task
    def read_clients(manifest: str) -> list[dict[str, Any]]:
        """The manifest's rows, each with its PDF's path and SHA-256."""
        folder = Path(manifest).parent
        digests: dict[str, str] = {}
        with open(manifest, newline="", encoding="utf-8") as handle:
            clients = [{**row, "pdf": str(folder / row["pdf"])} for row in csv.DictReader(handle)]
        for client in clients:
            if client["pdf"] not in digests:
                digests[client["pdf"]] = hashlib.sha256(Path(client["pdf"]).read_bytes()).hexdigest()
            client["pdf_sha256"] = digests[client["pdf"]]
        return clients

    def distinct(clients: list[dict[str, Any]]) -> dict[str, str]:
        """SHA-256 -> the first path with that content, in manifest order."""
        first: dict[str, str] = {}
        for client in clients:
            first.setdefault(client["pdf_sha256"], client["pdf"])
        return first

    @task
    def distinct_pdfs(clients: list[dict[str, Any]]) -> list[str]:
        return list(distinct(clients).values())

    @task
    def envelopes_to_create(clients: list[dict[str, Any]], document_ids: list[str]) -> list[dict[str, Any]]:
        document_of = dict(zip(distinct(clients), document_ids, strict=True))
        return [
            {
                "subject": client["subject"],
                "document_ids": [document_of[client["pdf_sha256"]]],
                "recipients": [
                    {"email": client["signer_email"], "name": client["signer_name"], "role": "SIGNER"}
                ],
            }
            for client in clients
        ]

    clients = read_clients("{{ params.manifest }}")
    upload = CertyneoUploadDocumentOperator.partial(
        task_id="upload", pool=POOL, map_index_template="{{ task.source.rsplit('/', 1)[-1] }}"
    ).expand(source=distinct_pdfs(clients))
    create = CertyneoCreateEnvelopeOperator.partial(task_id="create", pool=POOL).expand_kwargs(
        envelopes_to_create(clients, upload.output)
    )
    send = CertyneoSendEnvelopeOperator.partial(
        task_id="send_and_wait",
        pool=POOL,
        wait_for_completion=True,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        max_active_tis_per_dagrun=16,
    ).expand(envelope_id=create.output)
    summary = summarize(create.output, "{{ dag_run.start_date.isoformat() }}")
    send >> summary
    [clients, upload, create, send, summary] >> fail_if_any_task_failed()


def approval_step() -> Any:
    """The ``approve`` task: a person reads the preview's summary and approves or rejects the send (a
    rejection skips everything after it: nothing is sent). Without Airflow's ApprovalOperator, a task that
    says in its log that the run goes on unapproved."""
    if ApprovalOperator is not None:
        return ApprovalOperator(
            task_id="approve",
            subject="Send {{ ti.xcom_pull(task_ids='preview')['to_send'] }} contracts "
            "({{ ti.xcom_pull(task_ids='preview')['requests']['total'] }} requests)?",
            body="{{ ti.xcom_pull(task_ids='preview')['text'] }}",
            ignore_downstream_trigger_rules=True,
            response_timeout=timedelta(days=7),
        )

    @task(task_id="approve")
    def no_approval_step() -> None:
        import logging

        logging.getLogger(__name__).warning(
            "This Airflow has no ApprovalOperator (human-in-the-loop needs Airflow 3.1+): the bulk send "
            "runs after the preview without a person's approval"
        )

    return no_approval_step()


with DAG(
    dag_id="certyneo_bulk_operator",
    schedule=MONTHLY,
    start_date=START,
    catchup=False,
    default_args=RETRIES,
    tags=TAGS,
    params={"manifest": MANIFEST},
) as operator_dag:
    # reads the journal of bulk_send: a cleared run's preview reports what an earlier try sent
    preview = CertyneoBulkSendOperator(
        task_id="preview", manifest="{{ params.manifest }}", dry_run=True, journal_task_id="bulk_send"
    )
    approve = approval_step()
    bulk = CertyneoBulkSendOperator(
        task_id="bulk_send",
        manifest="{{ params.manifest }}",
        # the preview's XCom 'fingerprint': refuses a manifest or PDF changed after the preview
        expected_fingerprint=XComArg(preview, key="fingerprint"),
        wait_for_completion=True,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
    )
    preview >> approve >> bulk

    @task(trigger_rule="all_done")
    def envelope_ids(**context: Any) -> list[str]:
        rows = context["ti"].xcom_pull(task_ids="bulk_send", key="results") or []
        return [row["envelope_id"] for row in rows if row.get("envelope_id")]

    ids = envelope_ids()
    bulk >> ids
    [bulk, summarize(ids, "{{ dag_run.start_date.isoformat() }}")] >> fail_if_any_task_failed()
