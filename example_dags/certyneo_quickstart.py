"""Quick start: upload a PDF, address it to a signer, send it, wait (deferred) until it is signed, then
archive the signed PDF and the eIDAS audit trail to object storage.

Run it against the bundled emulator with the README's main command, or against Certyneo with a
``certyneo_default`` connection holding your key.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG

from airflow_provider_certyneo.operators.document import (
    CertyneoDownloadAuditTrailOperator,
    CertyneoDownloadSignedDocumentOperator,
    CertyneoUploadDocumentOperator,
)
from airflow_provider_certyneo.operators.envelope import (
    CertyneoCreateEnvelopeOperator,
    CertyneoSendEnvelopeOperator,
)

CONTRACT = Path(__file__).parent / "files" / "contrat-de-prestation.pdf"
ARCHIVE = os.environ.get("CERTYNEO_ARCHIVE", "file:///tmp/certyneo-archive")
# The run's day, also in runs without a logical date (REST API, `airflow dags trigger`): not the ds macro
RUN_DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
# A try that the scheduler fails by mistake (see README, Troubleshooting) is retried: sending is exactly once
# and an envelope already COMPLETED returns at once.
RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=15)}

with DAG(
    dag_id="certyneo_quickstart",
    description="Upload, send, wait for the signature, archive the evidence",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=RETRIES,
    tags=["certyneo", "example"],
    params={
        "pdf": str(CONTRACT),
        "signer_email": "client@example.com",
        "signer_name": "Marie Dubois",
        "archive": ARCHIVE,
    },
) as dag:
    upload = CertyneoUploadDocumentOperator(task_id="upload", source="{{ params.pdf }}")

    create = CertyneoCreateEnvelopeOperator(
        task_id="create",
        subject="Contrat de prestation",
        document_ids=upload.output,
        recipients=[
            {"email": "{{ params.signer_email }}", "name": "{{ params.signer_name }}", "role": "SIGNER"}
        ],
        message="Bonjour, merci de signer le contrat ci-joint.",
    )

    send = CertyneoSendEnvelopeOperator(
        task_id="send_and_wait",
        envelope_id=create.output,
        wait_for_completion=True,
        deferrable=True,
        poll_interval=float(os.environ.get("CERTYNEO_POLL_INTERVAL", "30")),
    )

    signed = CertyneoDownloadSignedDocumentOperator(
        task_id="archive_signed_pdf",
        envelope_id=create.output,
        destination="{{ params.archive }}/" + RUN_DAY + "/",
    )

    audit_trail = CertyneoDownloadAuditTrailOperator(
        task_id="archive_audit_trail",
        envelope_id=create.output,
        destination="{{ params.archive }}/" + RUN_DAY + "/",
    )

    upload >> create >> send >> [signed, audit_trail]
