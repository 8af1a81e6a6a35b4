"""Event-driven archiving: whenever a contract is signed, archive its signed PDF, its eIDAS audit trail and
an evidence record — with no task sitting in a wait.

Scheduled on the asset ``certyneo://certyneo_default/envelopes/completed``. Two ways to feed it:

* **push** (Airflow reachable from Certyneo): register the provider's webhook receiver once
  (``certyneo-webhooks register --url https://airflow.example.com/certyneo/webhooks/certyneo_default``) and
  put the secret it prints in the connection's ``webhook_secret`` extra;
* **pull** (Airflow behind a firewall): set ``CERTYNEO_WATCH=true`` where the DAG is parsed; a watcher in
  the triggerer asks Certyneo what changed once per ``CERTYNEO_POLL_INTERVAL`` seconds.

Several signatures can land in one run, so the task loops over every triggering event. Delivery is at least
once and archiving is idempotent: an envelope whose evidence record exists is skipped.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_certyneo.assets import contracts_asset

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

    @task
    def archive_signed(**context: Any) -> list[str]:
        """Archive every envelope of the triggering events, once each."""
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_certyneo.assets import envelope_of
        from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

        envelopes: dict[str, dict[str, Any]] = {}
        for events in context["triggering_asset_events"].values():
            for event in events:
                payload = envelope_of(event.extra or {})
                if payload.get("envelope_id"):
                    envelopes[payload["envelope_id"]] = payload
        archived = []
        with CertyneoHook(CONN_ID) as hook:
            for envelope_id, payload in envelopes.items():
                folder = f"{ARCHIVE}/signed/{envelope_id}/"
                evidence = ObjectStoragePath(f"{folder}evidence.json")
                if evidence.exists():
                    print(f"{envelope_id}: already archived (event {payload.get('event_id')})")
                    continue
                signed = hook.download_signed_document(envelope_id, folder, overwrite=True)
                trail = hook.download_audit_trail(envelope_id, folder, overwrite=True)
                record = {**payload, "signed_document": signed, "audit_trail": trail}
                evidence.write_text(json.dumps(record, indent=2, sort_keys=True))
                print(f"{envelope_id}: archived '{payload.get('subject')}' to {folder}")
                archived.append(envelope_id)
        return archived

    archive_signed()
