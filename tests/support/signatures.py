"""A run of many envelopes for the Signatures view: envelopes made straight in an in-process emulator's
store (sent over the last hour or so, as a paced bulk send would have), and a DAG run whose XComs name them
(bulk-shaped: batches of ``results``), run for real with ``dag.test()``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_certyneo.emulator.pdf import text_pdf

SIGNERS = [
    {"email": "client{i}@example.com", "name": "Client {i}", "role": "SIGNER", "order": 1},
    {"email": "rh@example.com", "name": "Ressources humaines", "role": "SIGNER", "order": 2},
]


def seed_envelopes(store: Any, count: int, public_url: str, started_ago: float = 3600.0) -> list[str]:
    """``count`` SENT envelopes (two signers, sequential), the i-th sent ``started_ago - 1.5 i`` seconds ago
    on the emulator's clock. Returns their ids, oldest first."""
    document = store.add_document("test", "contract.pdf", text_pdf("Contrat", ["view at scale"]))
    ids = []
    try:
        for i in range(count):
            store.clock_skew = timedelta(seconds=-started_ago + 1.5 * i)
            signers = [{k: v.format(i=i) if isinstance(v, str) else v for k, v in s.items()} for s in SIGNERS]
            envelope = store.create_envelope(
                "test",
                {
                    "subject": f"Contrat {i}",
                    "documentIds": [document.id],
                    "recipients": signers,
                    "signingOrder": "SEQUENTIAL",
                },
            )
            store.send_envelope("test", envelope.id, public_url)
            ids.append(envelope.id)
    finally:
        store.clock_skew = timedelta(0)
    return ids


def at_past(store: Any, seconds_ago: float, act: Any) -> Any:
    """Do ``act()`` with the emulator's clock ``seconds_ago`` in the past."""
    store.clock_skew = timedelta(seconds=-seconds_ago)
    try:
        return act()
    finally:
        store.clock_skew = timedelta(0)


def bulk_run(dag_id: str, ids: list[str], batch: int = 500) -> Any:
    """A finished DAG run (started two hours ago) whose tasks pushed ``results`` naming ``ids``, ``batch``
    per task, as the bulk operator's batches do."""
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    from tests.support.airflow_runs import run_dag

    def push(part: list[tuple[int, str]], **context: Any) -> None:
        context["ti"].xcom_push("results", [{"row": n, "envelope_id": i, "status": "SENT"} for n, i in part])
        context["ti"].xcom_push("certyneo_conn_id", "certyneo_default")

    with DAG(dag_id, schedule=None, catchup=False) as dag:
        for start in range(0, len(ids), batch):
            part = list(enumerate(ids[start : start + batch], start))
            PythonOperator(task_id=f"send_batch_{start // batch}", python_callable=push, op_args=[part])
    started = datetime.now(timezone.utc) - timedelta(hours=2)
    return run_dag(dag, started)
