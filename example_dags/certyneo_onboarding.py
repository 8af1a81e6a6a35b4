"""Onboarding: every new hire signs an employment contract before day one.

Daily: pick up the day's new hires from a file drop (``<drop>/<YYYY-MM-DD>.csv`` with ``name,email,
start_date``), send each an employment contract signed in sequence — the employee first, then HR — wait
for the signatures with the deferrable sensor, archive the evidence by date (signed PDF, audit trail and
``evidence.json``, verified: seals, audit trail, hashes), and void the envelopes still unsigned when the
deadline passes so that nobody signs a contract the company has given up on.
"""

from __future__ import annotations

import csv
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException
from airflow.sdk import DAG, task

from airflow_provider_certyneo.operators.document import CertyneoUploadDocumentOperator
from airflow_provider_certyneo.operators.envelope import (
    CertyneoCreateEnvelopeOperator,
    CertyneoSendEnvelopeOperator,
)
from airflow_provider_certyneo.operators.evidence import CertyneoArchiveEvidenceOperator
from airflow_provider_certyneo.sensors.envelope import CertyneoEnvelopeSensor

FILES = Path(__file__).parent / "files"
DROP = os.environ.get("CERTYNEO_ONBOARDING_DROP", str(FILES / "new-hires"))
ARCHIVE = os.environ.get("CERTYNEO_ARCHIVE", "file:///tmp/certyneo-archive")
HR = {"email": os.environ.get("CERTYNEO_HR_EMAIL", "rh@example.com"), "name": "Ressources humaines"}
SIGN_WITHIN = timedelta(seconds=float(os.environ.get("CERTYNEO_SIGN_WITHIN_SECONDS", str(5 * 24 * 3600))))
POLL_INTERVAL = float(os.environ.get("CERTYNEO_POLL_INTERVAL", "600"))
# a try the scheduler fails by mistake (README, Troubleshooting) is retried: every step is safe to retry
RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=15)}


def run_day(context: Any) -> str:
    """The run's day (YYYY-MM-DD), also in runs without a logical date (REST API, `airflow dags trigger`),
    where ``ds`` is undefined."""
    moment = context.get("logical_date") or context["dag_run"].run_after
    return str(moment.strftime("%Y-%m-%d"))


with DAG(
    dag_id="certyneo_onboarding",
    description="Employment contracts for each day's new hires: employee, then HR",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Paris"),
    catchup=False,
    default_args=RETRIES,
    tags=["certyneo", "example", "onboarding"],
) as dag:

    @task
    def new_hires(**context: Any) -> list[dict[str, str]]:
        drop = Path(DROP) / f"{run_day(context)}.csv"
        if not drop.exists():
            raise AirflowSkipException(f"no new hires today ({drop} does not exist)")
        with drop.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    template = CertyneoUploadDocumentOperator(
        task_id="upload_contract_template", source=str(FILES / "employment-contract.pdf")
    )

    @task
    def contracts(hires: list[dict[str, str]], document_id: str) -> list[dict[str, Any]]:
        return [
            {
                "subject": f"Contrat de travail - {hire['name']} (arrivée le {hire['start_date']})",
                "document_ids": [document_id],
                "signing_order": "SEQUENTIAL",
                "recipients": [
                    {"email": hire["email"], "name": hire["name"], "role": "SIGNER", "order": 1},
                    {**HR, "role": "SIGNER", "order": 2},
                ],
            }
            for hire in hires
        ]

    create = CertyneoCreateEnvelopeOperator.partial(task_id="create").expand_kwargs(
        contracts(new_hires(), template.output)
    )
    send = CertyneoSendEnvelopeOperator.partial(task_id="send").expand(envelope_id=create.output)
    wait = CertyneoEnvelopeSensor.partial(
        task_id="wait_for_signatures",
        deferrable=True,
        poke_interval=POLL_INTERVAL,
        timeout=SIGN_WITHIN.total_seconds(),
    ).expand(envelope_id=create.output)

    @task(trigger_rule="all_done")
    def void_unsigned(envelope_ids: list[str]) -> list[str]:
        """Past the deadline, an unsigned contract is withdrawn: void what is still waiting."""
        from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

        voided = []
        with CertyneoHook() as hook:
            for envelope_id in envelope_ids:
                if hook.get_envelope(envelope_id)["status"] == "SENT":
                    hook.void_envelope(envelope_id)
                    voided.append(envelope_id)
        print(f"Voided {len(voided)} unsigned envelope(s): {', '.join(voided) or '-'}")
        return voided

    @task(trigger_rule="one_failed")
    def fail_if_any_task_failed() -> None:
        """The clean-up tasks run whatever happened (all_done) and succeed: without this leaf, a run whose
        contracts failed would be green."""
        raise AirflowFailException("some tasks of this run failed: see the failed task instances")

    # signed PDF + audit trail + evidence.json under <archive>/<date>/<envelope id>/, each verified (PAdES
    # seals to the connection's evidence_trust_roots, audit trail, hashes) before it is called evidence
    archived = CertyneoArchiveEvidenceOperator.partial(
        task_id="archive",
        trigger_rule="all_done",
        destination=ARCHIVE + "/{{ (dag_run.logical_date or dag_run.run_after) | ds }}/",
    ).expand(envelope_ids=create.output)
    send >> wait
    voided = void_unsigned(create.output)
    wait >> [archived, voided]
    [create, send, wait, archived, voided] >> fail_if_any_task_failed()
