"""Event-driven signing: what a webhook delivery costs the receiver, and what the pull watcher costs while
1,000 envelopes change.

Prints ``name: value`` lines:
- webhook_verify_and_record_ms: mean time per signed delivery through the plugin's receiver over a socket
  until its answer (signature, age, claim and inbox row committed; the drainer registers the asset event
  after it), 200 deliveries one after another, SQLite;
- webhook_verify_and_record_p95_ms;
- watcher_envelopes, watcher_poll_interval_seconds, watcher_events (one per completion, limit: = envelopes);
- watcher_requests_per_interval: list requests per poll interval while 1,000 envelopes complete over ten
  intervals of 5 s;
- watcher_requests_ratio_to_floor: against ceil(changes in one look / 100), a look reaching back one
  interval plus the 10 s overlap (pages of 100).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="certyneo-bench-events-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "example_dags")
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from _emulator import contract_rows, emulator  # noqa: E402

from airflow_provider_certyneo.bulk.journal import Journal  # noqa: E402
from airflow_provider_certyneo.bulk.manifest import contracts_from_list  # noqa: E402
from airflow_provider_certyneo.bulk.pipeline import send_all  # noqa: E402
from airflow_provider_certyneo.triggers.events import OVERLAP, CertyneoEnvelopeEventTrigger  # noqa: E402

DELIVERIES, ENVELOPES, INTERVAL, INTERVALS = 200, 1000, 5.0, 10
SECRET = "whsec_" + "b" * 32


def sign(body: bytes) -> str:
    import hashlib
    import hmac

    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def webhook_receiver() -> None:
    import uvicorn
    from fastapi import FastAPI

    from airflow_provider_certyneo.emulator.server import free_port
    from airflow_provider_certyneo.plugins.certyneo import CertyneoPlugin
    from tests.support.airflow_runs import load, register

    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    register(load("certyneo_archive_signed").dag)
    os.environ["AIRFLOW_CONN_CERTYNEO_DEFAULT"] = json.dumps(
        {"conn_type": "certyneo", "password": "sk_test_" + "x" * 30, "extra": {"webhook_secret": SECRET}}
    )
    (spec,) = CertyneoPlugin.fastapi_apps
    host = FastAPI()
    host.mount(spec["url_prefix"], spec["app"])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(host, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    times = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for i in range(DELIVERIES + 10):
            event = {
                "id": f"evt_{uuid.uuid4().hex}",
                "type": "envelope.completed",
                "createdAt": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
                "data": {
                    "envelope": {"id": f"env_{i}", "subject": "S", "status": "COMPLETED", "recipients": []}
                },
            }
            body = json.dumps(event).encode()
            started = time.perf_counter()
            answer = client.post(
                "/certyneo/webhooks/certyneo_default",
                content=body,
                headers={"X-Certyneo-Signature": sign(body)},
            )
            elapsed = time.perf_counter() - started
            assert answer.json()["status"] == "recorded", answer.text
            if i >= 10:
                times.append(elapsed * 1000)
    server.should_exit = True
    print(f"webhook_verify_and_record_ms: {statistics.mean(times):.2f}")
    print(f"webhook_verify_and_record_p95_ms: {sorted(times)[int(0.95 * len(times))]:.2f}")


def watcher() -> None:
    work, rows = contract_rows("watcher", ENVELOPES)
    with emulator(per_minute=6000, burst=200) as (conn_id, control):
        results = asyncio.run(send_all(conn_id, contracts_from_list(rows), Journal(work / "j.jsonl"), 64))
        ids = [r["envelope_id"] for r in results]
        events: list[str] = []

        async def watch() -> None:
            async for event in CertyneoEnvelopeEventTrigger(
                conn_id, poll_interval=INTERVAL, lookback=1
            ).run():
                events.append(event.payload["envelope_id"])

        def sign_over_intervals() -> None:
            per_interval = math.ceil(len(ids) / INTERVALS)
            for start in range(0, len(ids), per_interval):
                began = time.monotonic()
                for envelope_id in ids[start : start + per_interval]:
                    control.sign(envelope_id)
                time.sleep(max(0.0, INTERVAL - (time.monotonic() - began)))

        async def main() -> int:
            before = control.counters()["requests"].get("GET /api/v1/envelopes", 0)
            task = asyncio.create_task(watch())
            await asyncio.sleep(0.5)
            await asyncio.to_thread(sign_over_intervals)
            await asyncio.sleep(2 * INTERVAL)
            task.cancel()
            return int(control.counters()["requests"].get("GET /api/v1/envelopes", 0) - before)

        started = time.monotonic()
        lists = asyncio.run(main())
        intervals = (time.monotonic() - started) / INTERVAL
    window = INTERVAL + OVERLAP.total_seconds()  # each look reaches back one overlap further
    floor = math.ceil(ENVELOPES / INTERVALS * window / INTERVAL / 100)
    print(f"watcher_envelopes: {ENVELOPES}")
    print(f"watcher_poll_interval_seconds: {INTERVAL}")
    print(f"watcher_events: {len(set(events))}")
    print(f"watcher_duplicate_events: {len(events) - len(set(events))}")
    print(f"watcher_requests_per_interval: {lists / intervals:.2f}")
    print(f"watcher_requests_floor_per_interval: {floor}")
    print(f"watcher_requests_ratio_to_floor: {lists / intervals / floor:.2f}")


if __name__ == "__main__":
    webhook_receiver()
    watcher()
