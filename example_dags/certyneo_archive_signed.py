"""Event-driven archiving: whenever a contract is signed, archive its signed PDF, its eIDAS audit trail and
an evidence record — with no task sitting in a wait.

Scheduled on the asset ``certyneo://certyneo_default/envelopes/completed``. Two ways to feed it:

* **push** (Airflow reachable from Certyneo): register the provider's webhook receiver once
  (``certyneo-webhooks register --url https://airflow.example.com/certyneo/webhooks/certyneo_default``) and
  put the secret it prints in the connection's ``webhook_secret`` extra;
* **pull** (Airflow behind a firewall): set ``CERTYNEO_WATCH=true`` where the DAG is parsed; a watcher in
  the triggerer asks Certyneo what changed once per ``CERTYNEO_POLL_INTERVAL`` seconds.

Several signatures can land in one run, so every triggering event's envelope is archived. Each bundle (signed
PDF, audit trail, ``evidence.json``) is verified first: PAdES seals chaining to the connection's
``evidence_trust_roots``, the audit trail's documents, signers and signed-PDF hash. Delivery is at least once
and archiving is idempotent: an envelope whose verified bundle is complete is skipped.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_certyneo.assets import contracts_asset
from airflow_provider_certyneo.operators.evidence import CertyneoArchiveEvidenceOperator

CONN_ID = os.environ.get("CERTYNEO_CONN_ID", "certyneo_default")
ARCHIVE = os.environ.get("CERTYNEO_ARCHIVE", "file:///tmp/certyneo-archive")
WATCH = os.environ.get("CERTYNEO_WATCH", "false").lower() == "true"
SIGNED = contracts_asset(
    CONN_ID, "completed", watch=WATCH, poll_interval=float(os.environ.get("CERTYNEO_POLL_INTERVAL", "60"))
)

with DAG(
    dag_id="certyneo_archive_signed",
    description="Archive each signed contract's PDF, audit trail and evidence when it is signed",
    schedule=[SIGNED],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["certyneo", "example", "event-driven"],
) as dag:

    @task(multiple_outputs=True)
    def signed_envelopes(**context: Any) -> dict[str, Any]:
        """The envelopes of every triggering event, once each, with what the event said about them."""
        from airflow_provider_certyneo.assets import envelope_of
        from airflow_provider_certyneo.evidence.archive import RESERVED

        envelopes: dict[str, dict[str, Any]] = {}
        for events in context["triggering_asset_events"].values():
            for event in events:
                payload = envelope_of(event.extra or {})
                if payload.get("envelope_id"):
                    envelopes[payload["envelope_id"]] = {
                        k: v for k, v in payload.items() if k not in RESERVED
                    }
        return {"envelope_ids": list(envelopes), "record_extra": envelopes}

    signed: Any = signed_envelopes()  # one XCom per key (multiple_outputs)
    # idempotent: an envelope whose verified bundle is complete is skipped (delivery is at least once)
    CertyneoArchiveEvidenceOperator(
        task_id="archive_signed",
        certyneo_conn_id=CONN_ID,
        envelope_ids=signed["envelope_ids"],
        record_extra=signed["record_extra"],
        destination=f"{ARCHIVE}/signed/",
    )
