"""Bulk contracts from a CSV manifest of clients, three ways, each followed by a summary of who signed.

``certyneo_bulk_mapped``: the manifest mapped in batches — one CertyneoBulkSendOperator task per batch of
``batch_size`` rows (250 by default: 2,000 contracts are 8 task instances and 8 waits, as many as the
``certyneo_api`` pool's 8 slots, so that every batch sends from start to end, and far below Airflow's
``[core] max_map_length`` of 1,024 and a triggerer's capacity of 1,000). Each batch is paced by the key's
governor (the workers of all hosts share one pace: see the README), resumable from its own journal beside
the manifest, and waits deferred for its whole set, holding no worker or pool slot, so the next batch
starts sending at once whatever the signers do.

``certyneo_bulk_per_contract``: one task instance per contract (upload once per distinct PDF, then create,
send and a deferred wait per client), for those who want each contract as its own task instance in the
UI. Airflow maps over at most ``[core] max_map_length`` items (1,024 by default): a longer manifest fails
its first task at once, naming the setting and the alternatives, before anything is sent. Sending and
waiting are separate tasks: the sends run in the ``certyneo_api`` pool at the key's pace and never wait for
a signer; each wait is a deferred sensor (one trigger per contract: 2,000 waits need room on the
triggerers, ``[triggerer] capacity`` times their number; see the README).

``certyneo_bulk_operator``: preview → approval → send. The preview (``dry_run=True``) checks every row as
the send will and sends nothing; a person reads its summary in the Airflow UI (Required actions, or the
task's page) and approves or rejects (Airflow's ``ApprovalOperator``, Airflow 3.1+; a rejected run sends
nothing). The send — one CertyneoBulkSendOperator task for the whole manifest, then one deferred wait for
the whole set — refuses a manifest or PDF changed since the preview. Where Airflow has no
``ApprovalOperator``, the DAG still parses and runs, preview then send, and the ``approve`` task logs that
nothing was approved.

Every API-calling task runs in the ``certyneo_api`` pool, sized for the key (create it with
``airflow pools set certyneo_api 8 "Certyneo key: 100 requests/min"``; leave *include deferred* off so that
waiting tasks hold no slot: all waiting triggers of a key share one poller). At Certyneo's 100 requests a
minute the key sets the pace: 2,000 contracts take about an hour in batches or in one bulk task (38 minutes
when they share one PDF), about 78 minutes one task per contract (each wait's first look is a request too).
The README's "Bulk sending: what it costs" has the figures per path.
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

from airflow_provider_certyneo.bulk.batches import DEFAULT_BATCH_SIZE
from airflow_provider_certyneo.operators.bulk import CertyneoBulkSendOperator
from airflow_provider_certyneo.operators.document import CertyneoUploadDocumentOperator
from airflow_provider_certyneo.operators.envelope import (
    CertyneoCreateEnvelopeOperator,
    CertyneoSendEnvelopeOperator,
)
from airflow_provider_certyneo.sensors.envelope import CertyneoEnvelopeSensor

MANIFEST = os.environ.get("CERTYNEO_BULK_MANIFEST", str(Path(__file__).parent / "files" / "clients.csv"))
POOL = os.environ.get("CERTYNEO_POOL", "certyneo_api")
POLL_INTERVAL = float(os.environ.get("CERTYNEO_POLL_INTERVAL", "300"))
BATCH_SIZE = int(os.environ.get("CERTYNEO_BATCH_SIZE", str(DEFAULT_BATCH_SIZE)))
WAIT_TIMEOUT = timedelta(days=30).total_seconds()
START = pendulum.datetime(2026, 1, 1, tz="UTC")
MONTHLY = "0 6 1 * *"
TAGS = ["certyneo", "example", "bulk"]
# A try that the scheduler fails by mistake (README, Troubleshooting: an upstream race when a wait ends
# soon after deferring) is retried: upload and create reuse what an earlier try made, a send is exactly once
# and an envelope already COMPLETED returns at once.
RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=15)}
# what the three bulk DAGs share besides their schedule: no catch-up, retried tasks, their tags
MONTHLY_BULK: dict[str, Any] = {
    "start_date": START,
    "catchup": False,
    "default_args": RETRIES,
    "tags": TAGS,
}
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


@task(task_id="envelope_ids", trigger_rule="all_done")
def sent_envelope_ids(task_id: str, **context: Any) -> list[str]:
    """The envelope ids the bulk task(s) sent, from their ``results`` XCom (pushed before any wait, so a
    batch whose contracts were declined still counts)."""
    pulled = context["ti"].xcom_pull(task_ids=task_id, key="results") or []
    batches = pulled if pulled and isinstance(pulled[0], list) else [pulled]
    return [row["envelope_id"] for rows in batches for row in rows or [] if row.get("envelope_id")]


with DAG(
    dag_id="certyneo_bulk_mapped",
    schedule=MONTHLY,
    **MONTHLY_BULK,
    params={"manifest": MANIFEST, "batch_size": BATCH_SIZE},
) as mapped_dag:

    @task
    def plan_batches(manifest: str, batch_size: str) -> list[list[int]]:
        """The manifest's rows in ``[start, stop)`` ranges of ``batch_size``: one bulk task each."""
        from airflow_provider_certyneo.bulk.batches import manifest_batches

        return manifest_batches(manifest, int(batch_size))

    batches = CertyneoBulkSendOperator.partial(
        task_id="send_batch",
        manifest="{{ params.manifest }}",
        pool=POOL,
        wait_for_completion=True,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        map_index_template="rows {{ task.row_range[0] + 1 }}-{{ task.row_range[1] }}",
    ).expand(row_range=plan_batches("{{ params.manifest }}", "{{ params.batch_size }}"))
    ids = sent_envelope_ids("send_batch")
    batches >> ids
    [batches, summarize(ids, "{{ dag_run.start_date.isoformat() }}")] >> fail_if_any_task_failed()


with DAG(
    dag_id="certyneo_bulk_per_contract",
    schedule=MONTHLY,
    **MONTHLY_BULK,
    params={"manifest": MANIFEST},
) as per_contract_dag:

    @task
    def read_clients(manifest: str) -> list[dict[str, Any]]:
        """The manifest's rows, each with its PDF's path and SHA-256; refused at once when Airflow could not
        map over them all."""
        from airflow_provider_certyneo.bulk.batches import check_map_length

        folder = Path(manifest).parent
        digests: dict[str, str] = {}
        with open(manifest, newline="", encoding="utf-8") as handle:
            clients = [{**row, "pdf": str(folder / row["pdf"])} for row in csv.DictReader(handle)]
        check_map_length(len(clients))
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
    send = CertyneoSendEnvelopeOperator.partial(task_id="send", pool=POOL).expand(envelope_id=create.output)
    wait = CertyneoEnvelopeSensor.partial(
        task_id="wait_signed", deferrable=True, poke_interval=POLL_INTERVAL, timeout=WAIT_TIMEOUT
    ).expand(envelope_id=create.output)
    send >> wait
    summary = summarize(create.output, "{{ dag_run.start_date.isoformat() }}")
    wait >> summary
    [clients, upload, create, send, wait, summary] >> fail_if_any_task_failed()


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
    **MONTHLY_BULK,
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

    ids = sent_envelope_ids("bulk_send")
    bulk >> ids
    [bulk, summarize(ids, "{{ dag_run.start_date.isoformat() }}")] >> fail_if_any_task_failed()
