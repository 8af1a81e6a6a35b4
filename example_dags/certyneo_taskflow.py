"""The quick start written with ``@task`` and the hook, for those who prefer TaskFlow.

Each step is its own task so that a retry never repeats a step that succeeded: a retried send meets the
envelope already sent (409 ``invalid_state``) and carries on without a second invitation.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_provider_certyneo.sensors.envelope import CertyneoEnvelopeSensor

CONTRACT = Path(__file__).parent / "files" / "contrat-de-prestation.pdf"
ARCHIVE = os.environ.get("CERTYNEO_ARCHIVE", "file:///tmp/certyneo-archive")
POLL_INTERVAL = float(os.environ.get("CERTYNEO_POLL_INTERVAL", "30"))


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # a try the scheduler fails by mistake (README, Troubleshooting) is retried: every step is safe to retry
    default_args={"retries": 2, "retry_delay": timedelta(seconds=15)},
    tags=["certyneo", "example", "taskflow"],
    params={"signer_email": "client@example.com", "signer_name": "Marie Dubois"},
)
def certyneo_taskflow() -> None:
    @task
    def upload() -> str:
        from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

        with CertyneoHook() as hook:
            return hook.upload_document(CONTRACT)["id"]

    @task
    def create(document_id: str, params: dict[str, Any] | None = None) -> str:
        from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

        assert params is not None
        signer = {"email": params["signer_email"], "name": params["signer_name"], "role": "SIGNER"}
        with CertyneoHook() as hook:
            return hook.create_envelope("Contrat de prestation", [document_id], [signer])["id"]

    @task
    def send(envelope_id: str) -> list[str]:
        from airflow_provider_certyneo.exceptions import CertyneoInvalidStateError
        from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

        with CertyneoHook() as hook:
            try:
                envelope = hook.send_envelope(envelope_id)
            except CertyneoInvalidStateError as exc:
                if exc.current_status == "DRAFT":
                    raise
                envelope = hook.get_envelope(envelope_id)
        # the signers' e-mails, not their sign URLs: those are bearer links, and XCom is readable by all
        # who may read this DAG
        return [r["email"] for r in envelope["recipients"] if r.get("signUrl")]

    @task
    def archive(envelope_id: str, **context: Any) -> list[dict[str, Any]]:
        from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

        # the run's day, also without a logical date (REST API, `airflow dags trigger`): not ds
        day = (context.get("logical_date") or context["dag_run"].run_after).strftime("%Y-%m-%d")
        with CertyneoHook() as hook:
            folder = f"{ARCHIVE}/{day}/"
            return [
                dict(hook.download_signed_document(envelope_id, folder, overwrite=True)),
                dict(hook.download_audit_trail(envelope_id, folder, overwrite=True)),
            ]

    envelope_id = create(upload())
    wait = CertyneoEnvelopeSensor(
        task_id="wait_for_signature", envelope_id=envelope_id, deferrable=True, poke_interval=POLL_INTERVAL
    )
    send(envelope_id) >> wait >> archive(envelope_id)


certyneo_taskflow()
