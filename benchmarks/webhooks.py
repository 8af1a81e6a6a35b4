"""The webhook receiver in a production shape: a real ``airflow api-server`` with two workers
(``AIRFLOW__API__WORKERS=2``) and the provider's plugin, PostgreSQL (a throwaway cluster of Debian's server,
configured as shipped: commits are durable) as the metadata database, a DAG scheduled on the asset, and 16
concurrent senders.

Prints ``name: value`` lines:
- webhook_deliveries_per_s: distinct signed deliveries recorded (answered ``recorded``: claim and inbox row
  committed) per second from an empty history (bursts of 600; the median of three rounds; target >= 100);
- webhook_registered_per_s: the same deliveries per second from the burst's first post until the drainers
  have registered the last of them as an asset event (the inbox empty again);
- webhook_registered_lag_s: how long after the burst's last answer the inbox was empty;
- webhook_deliveries_per_s_at_20000_events: the same once 20,000 events are recorded on the asset (put there
  with bulk SQL before each burst: asset events and their claims, as deliveries leave them);
- webhook_noop_route_per_s: the same senders against a no-op route of a plugin in the same API server (a
  test-only plugin file in this benchmark's AIRFLOW_HOME: it reads the body and answers), in the same rounds;
- webhook_ratio_to_noop_route: deliveries per second over no-op requests per second (target >= 0.5);
- webhook_p50_ms_at_0_events, webhook_p50_ms_at_20000_events, webhook_p95_ms_at_20000_events: latency
  per delivery as a sender sees it, over the three rounds;
- webhook_p50_growth_at_20000_events: the second median over the first (target <= 1.2);
- webhook_concurrent_copies_recorded_once: deliveries of which three copies were posted at once, answered
  ``recorded`` once and ``duplicate`` twice, and registered as exactly one asset event (of 200).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.support.deployment import AirflowStack  # noqa: E402
from tests.support.postgres import postgres_cluster  # noqa: E402

SECRET = "whsec_" + "w" * 32
SENDERS, BURST, ROUNDS, HISTORY, COPIES_CHECKED = 16, 600, 3, 20_000, 200
NOOP_PLUGIN = '''
"""Benchmark only: a plugin route that reads the body and answers, for the webhook receiver's baseline."""
from fastapi import FastAPI, Request
from airflow.plugins_manager import AirflowPlugin

app = FastAPI()


@app.post("/webhooks/{conn_id}")
async def noop(conn_id: str, request: Request) -> dict:
    await request.body()
    return {"status": "noop"}


class NoopPlugin(AirflowPlugin):
    name = "benchmark_noop"
    fastapi_apps = [{"app": app, "url_prefix": "/noop", "name": "no-op route"}]
'''


def signed_delivery() -> tuple[bytes, str]:
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "envelope.completed",
        "createdAt": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "data": {"envelope": {"id": f"env_{uuid.uuid4().hex[:20]}", "subject": "S", "status": "COMPLETED"}},
    }
    body = json.dumps(event).encode()
    return body, "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


async def send_all(url: str, bodies: list[tuple[bytes, str]]) -> tuple[float, list[float], list[str]]:
    """(seconds for all, each request's latency in ms, each answer's status) from SENDERS at once."""
    latencies: list[float] = [0.0] * len(bodies)
    statuses: list[str] = [""] * len(bodies)
    queue = iter(range(len(bodies)))
    limits = httpx.Limits(max_connections=SENDERS, max_keepalive_connections=SENDERS)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def sender() -> None:
            for i in queue:
                body, signature = bodies[i]
                headers = {"Content-Type": "application/json", "X-Certyneo-Signature": signature}
                started = time.perf_counter()
                answer = await client.post(url, content=body, headers=headers)
                latencies[i] = (time.perf_counter() - started) * 1000
                statuses[i] = answer.json().get("status", f"HTTP {answer.status_code}")

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(SENDERS)))
        return time.perf_counter() - started, latencies, statuses


def burst(url: str, count: int, expected: str) -> tuple[float, list[float], float]:
    """(answers per second, each one's latency in ms, seconds of the burst)."""
    bodies = [signed_delivery() for _ in range(count)]
    elapsed, latencies, statuses = asyncio.run(send_all(url, bodies))
    wrong = [s for s in statuses if s != expected]
    assert not wrong, f"{len(wrong)} answers were not {expected!r}: {sorted(set(wrong))}"
    return count / elapsed, latencies, elapsed


def seconds_until_drained(database_url: str, timeout: float = 120.0) -> float:
    """Seconds until the receiver's inbox is empty: every recorded delivery registered as an asset event."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    started = time.perf_counter()
    try:
        with engine.connect() as connection:
            while connection.execute(text("SELECT count(*) FROM certyneo_webhook_inbox")).scalar():
                connection.rollback()
                assert time.perf_counter() - started < timeout, "the inbox was not drained"
                time.sleep(0.01)
        return time.perf_counter() - started
    finally:
        engine.dispose()


def set_history(database_url: str, events: int) -> None:
    """Exactly ``events`` recorded deliveries on the asset: the asset events and claims there are deleted,
    then ``events`` put back with bulk SQL; then VACUUM ANALYZE, as autovacuum would leave the tables, and a
    CHECKPOINT, as the database would have taken since."""
    from airflow.models.asset import AssetEvent
    from sqlalchemy import create_engine, delete
    from sqlalchemy.orm import Session

    from airflow_provider_certyneo.plugins.claims import CLAIMS
    from tests.webhooks.history import add_history

    engine = create_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            session.execute(delete(AssetEvent))
            session.execute(delete(CLAIMS))
            add_history(session, events, prefix="evt_bench_history_")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE asset_event, certyneo_webhook_claim")
            # the bulk insert's WAL written out now, not by a checkpoint in the middle of the next burst
            connection.exec_driver_sql("CHECKPOINT")
    finally:
        engine.dispose()


def copies_recorded_once(url: str, database_url: str) -> int:
    """Of COPIES_CHECKED deliveries each posted three times at once: those answered once ``recorded`` and
    twice ``duplicate`` that became exactly one asset event once drained."""
    from sqlalchemy import create_engine, text

    deliveries = [signed_delivery() for _ in range(COPIES_CHECKED)]
    posts = [d for d in deliveries for _ in range(3)]
    _, _, statuses = asyncio.run(send_all(url, posts))
    by_event: dict[str, list[str]] = {}
    for (body, _), status in zip(posts, statuses, strict=True):
        by_event.setdefault(json.loads(body)["id"], []).append(status)
    seconds_until_drained(database_url)
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            query = text(
                "SELECT extra -> 'payload' ->> 'event_id', count(*) FROM asset_event "
                "WHERE extra -> 'payload' ->> 'event_id' = ANY(:ids) GROUP BY 1"
            )
            rows = connection.execute(query, {"ids": list(by_event)}).all()
            events: dict[str, int] = {str(event_id): int(count) for event_id, count in rows}
    finally:
        engine.dispose()
    return sum(
        sorted(s) == ["duplicate", "duplicate", "recorded"] and events.get(event_id) == 1
        for event_id, s in by_event.items()
    )


def p50(latencies: list[float]) -> float:
    return statistics.median(latencies)


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="certyneo-bench-webhooks-"))
    (home / "plugins").mkdir()
    (home / "plugins" / "benchmark_noop.py").write_text(NOOP_PLUGIN)
    with postgres_cluster(settings={}) as cluster:
        database_url = cluster.create_database("airflow")
        connection = {"conn_type": "certyneo", "password": "sk_test_" + "w" * 30}
        env = {
            "AIRFLOW__API__WORKERS": "2",
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW_CONN_CERTYNEO_DEFAULT": json.dumps({**connection, "extra": {"webhook_secret": SECRET}}),
            "PYTHONPATH": str(ROOT),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        }
        stack = AirflowStack(home, ROOT / "example_dags", env, commands={"api-server": ["api-server"]})
        with stack:
            register = "from tests.support.airflow_runs import load, register"
            subprocess.run(
                [sys.executable, "-c", f"{register}; register(load('certyneo_archive_signed').dag)"],
                env=stack.env,
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            stack.api.unpause("certyneo_archive_signed")  # deliveries queue a run, as in production
            webhook = f"{stack.base_url}/certyneo/webhooks/certyneo_default"
            noop = f"{stack.base_url}/noop/webhooks/certyneo_default"
            burst(noop, 200, "noop")  # warm both workers: imports, connections
            burst(webhook, 200, "recorded")
            seconds_until_drained(database_url)
            # rounds alternate the three measurements, so that a change in the machine's load (it is shared)
            # falls on all three alike
            rates: dict[str, list[float]] = {"noop": [], "none": [], "history": [], "registered": []}
            latencies: dict[str, list[float]] = {"none": [], "history": []}
            lags: list[float] = []
            for _ in range(ROUNDS):
                rate, _, _ = burst(noop, BURST, "noop")
                rates["noop"].append(rate)
                for name, events in (("none", 0), ("history", HISTORY)):
                    set_history(database_url, events)
                    rate, times, elapsed = burst(webhook, BURST, "recorded")
                    lag = seconds_until_drained(database_url)
                    rates[name].append(rate)
                    latencies[name] += times
                    if name == "none":
                        rates["registered"].append(BURST / (elapsed + lag))
                        lags.append(lag)
            copies = copies_recorded_once(webhook, database_url)
    noop_rate, rate, rate_later, registered = (
        statistics.median(rates[name]) for name in ("noop", "none", "history", "registered")
    )
    fresh, later = latencies["none"], latencies["history"]
    print(f"webhook_senders: {SENDERS}")
    print("webhook_api_server_workers: 2")
    print(f"webhook_noop_route_per_s: {noop_rate:.1f}")
    print(f"webhook_deliveries_per_s: {rate:.1f}")
    print(f"webhook_deliveries_per_s_at_20000_events: {rate_later:.1f}")
    print(f"webhook_registered_per_s: {registered:.1f}")
    print(f"webhook_registered_lag_s: {statistics.median(lags):.2f}")
    print(f"webhook_ratio_to_noop_route: {rate / noop_rate:.2f}")
    print(f"webhook_p50_ms_at_0_events: {p50(fresh):.1f}")
    print(f"webhook_p50_ms_at_20000_events: {p50(later):.1f}")
    print(f"webhook_p95_ms_at_20000_events: {sorted(later)[int(0.95 * len(later))]:.1f}")
    print(f"webhook_p50_growth_at_20000_events: {p50(later) / p50(fresh):.2f}")
    print(f"webhook_concurrent_copies_recorded_once: {copies}/{COPIES_CHECKED}")


if __name__ == "__main__":
    main()
