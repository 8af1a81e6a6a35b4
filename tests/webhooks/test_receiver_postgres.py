"""The webhook receiver on PostgreSQL (a throwaway cluster of Debian's server) with two worker processes, as
an API server with ``[api] workers = 2`` runs it: concurrent copies of one delivery are recorded once
whichever worker gets them, and with 20,000 events of history a delivery reads none of them (the
database's own counters of rows read say so, not timings)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from airflow_provider_certyneo.emulator.server import free_port
from airflow_provider_certyneo.governor.stores import STATE_DIR_ENV
from tests.support.deployment import clean_environment
from tests.support.polling import wait_until
from tests.support.postgres import postgres_cluster, require_postgres
from tests.webhooks.conftest import SECRET, delivery, sign
from tests.webhooks.history import URI, add_history
from tests.webhooks.statements import payload_of
from tests.webhooks.test_claims import HISTORY, reads_history

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
REGISTER = "from tests.support.airflow_runs import load, register"
UVICORN = ["-m", "uvicorn", "--factory", "tests.webhooks.served:receiver_host", "--workers", "2"]


@dataclass
class PostgresReceiver:
    base_url: str
    database_url: str
    env: dict[str, str]

    def post(self, client: httpx.Client, body: bytes) -> httpx.Response:
        return client.post(
            f"{self.base_url}/certyneo/webhooks/certyneo_default",
            content=body,
            headers={"Content-Type": "application/json", "X-Certyneo-Signature": sign(body)},
        )

    def sql(self, query: str, **params: object) -> list[tuple[object, ...]]:
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        engine = create_engine(self.database_url, poolclass=NullPool)
        try:
            with engine.begin() as connection:
                return [tuple(row) for row in connection.execute(text(query), params)]
        finally:
            engine.dispose()

    def events_of(self, event_id: str) -> int:
        """The asset events of ``event_id``, once the receiver's drainers have emptied the inbox."""
        wait_until(
            lambda: self.sql("SELECT count(*) FROM certyneo_webhook_inbox") == [(0,)],
            timeout=30,
            interval=0.05,
            what="the receiver's drainers to empty the inbox",
        )
        rows = self.sql(
            "SELECT count(*) FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.uri = :uri AND e.extra -> 'payload' ->> 'event_id' = :event_id",
            uri=URI,
            event_id=event_id,
        )
        return int(rows[0][0])  # type: ignore[call-overload]


def run(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def postgres_receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresReceiver]:
    require_postgres()
    home = tmp_path_factory.mktemp("postgres-airflow-home")
    with postgres_cluster() as cluster:
        database_url = cluster.create_database("airflow")
        connection = {"conn_type": "certyneo", "password": "sk_test_" + "p" * 30}
        env = {
            **clean_environment(),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW_CONN_CERTYNEO_DEFAULT": json.dumps({**connection, "extra": {"webhook_secret": SECRET}}),
            STATE_DIR_ENV: str(home / "rate-state"),
            "PYTHONPATH": str(ROOT),
        }
        run(env, "-m", "airflow", "db", "migrate")
        run(env, "-c", f"{REGISTER}; register(load('certyneo_archive_signed').dag)")
        port = free_port()
        log = (home / "receiver.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, *UVICORN, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        receiver = PostgresReceiver(f"http://127.0.0.1:{port}", database_url, env)
        try:

            def answers() -> bool:
                assert server.poll() is None, (home / "receiver.log").read_text()
                try:
                    with httpx.Client(timeout=5) as client:
                        return receiver.post(client, b"{}").status_code == 400  # signed, not an event
                except httpx.TransportError:
                    return False

            wait_until(answers, timeout=60, interval=0.2, what="the receiver's two workers")
            yield receiver
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
            log.close()


def test_one_delivery_posted_16_times_at_once_is_recorded_once_on_postgres(
    postgres_receiver: PostgresReceiver,
) -> None:
    body = delivery()
    event_id = json.loads(body)["id"]
    limits = httpx.Limits(max_connections=16)
    with httpx.Client(timeout=30, limits=limits) as client, ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: postgres_receiver.post(client, body), range(16)))
    assert [a.status_code for a in answers] == [200] * 16, [a.text for a in answers]
    assert sorted(a.json()["status"] for a in answers) == ["duplicate"] * 15 + ["recorded"]
    assert postgres_receiver.events_of(event_id) == 1


def test_many_deliveries_each_arriving_three_times_at_once_are_each_recorded_once(
    postgres_receiver: PostgresReceiver,
) -> None:
    bodies = [delivery() for _ in range(30)]
    posts = bodies * 3
    random.Random(7).shuffle(posts)
    limits = httpx.Limits(max_connections=16)
    with httpx.Client(timeout=30, limits=limits) as client, ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda body: postgres_receiver.post(client, body), posts))
    statuses: dict[str, list[str]] = {}
    for body, answer in zip(posts, answers, strict=True):
        assert answer.status_code == 200, answer.text
        statuses.setdefault(json.loads(body)["id"], []).append(answer.json()["status"])
    assert all(sorted(s) == ["duplicate", "duplicate", "recorded"] for s in statuses.values()), statuses
    assert all(postgres_receiver.events_of(event_id) == 1 for event_id in statuses)


def rows_read(receiver: PostgresReceiver) -> dict[str, tuple[int, ...]]:
    """PostgreSQL's cumulative counters per table: (sequential scans, rows they read, rows fetched through
    an index, rows inserted)."""
    rows = receiver.sql(
        "SELECT relname, seq_scan, seq_tup_read, coalesce(idx_tup_fetch, 0), n_tup_ins "
        "FROM pg_stat_user_tables WHERE relname IN ('asset_event', 'certyneo_webhook_claim')"
    )
    return {str(row[0]): tuple(int(v) for v in row[1:]) for row in rows}  # type: ignore[call-overload]


def test_with_20000_events_of_history_a_delivery_reads_none_of_them(
    postgres_receiver: PostgresReceiver,
) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from airflow_provider_certyneo.plugins.claims import ensure_claim_table

    engine = create_engine(postgres_receiver.database_url)
    try:
        ensure_claim_table(engine)
        with Session(engine) as session, session.begin():
            old_ids = add_history(session, HISTORY, prefix=f"evt_pg_{uuid.uuid4().hex[:6]}_")
    finally:
        engine.dispose()

    # a server process reports its counters when idle, at most ten seconds late: let the receiver's settle
    time.sleep(11)
    before = rows_read(postgres_receiver)
    fresh = f"evt_{uuid.uuid4().hex[:24]}"
    # in a process of its own, which exits: its server process reports its counters on the way out
    deliveries = (fresh, fresh, old_ids[0])
    printed = run(postgres_receiver.env, "-m", "tests.webhooks.statements", *deliveries)
    answers = json.loads(printed.strip().splitlines()[-1])  # its last line: Airflow may log before it
    assert [status for status, _ in answers] == ["recorded", "duplicate", "duplicate"]
    for _, statements in answers:
        assert not [s for s in statements if reads_history(s)], statements

    def reported() -> dict[str, tuple[int, ...]]:
        now = rows_read(postgres_receiver)
        inserted = all(now[table][3] > before[table][3] for table in now)
        return now if inserted else {}

    after = wait_until(reported, timeout=30, interval=0.2, what="PostgreSQL's table counters")
    for table in ("asset_event", "certyneo_webhook_claim"):
        seq_read = after[table][1] - before[table][1]
        index_read = after[table][2] - before[table][2]
        assert seq_read == 0, f"{seq_read} rows of {table} read by sequential scan for 3 deliveries"
        assert index_read <= 3, f"{index_read} rows of {table} fetched through an index for 3 deliveries"

    body = delivery()
    with httpx.Client(timeout=30) as client:
        assert postgres_receiver.post(client, body).json()["status"] == "recorded"
        assert postgres_receiver.post(client, body).json()["status"] == "duplicate"
    assert postgres_receiver.events_of(json.loads(body)["id"]) == 1


def test_deliveries_recorded_together_claim_in_one_statement_and_answer_as_alone(
    postgres_receiver: PostgresReceiver,
) -> None:
    """PostgreSQL's path of the group commit: one ``INSERT … ON CONFLICT DO NOTHING RETURNING`` claims the
    batch; a copy within it, an event already recorded and an asset no DAG uses get their own answers."""
    known, a, b = (f"evt_{uuid.uuid4().hex[:24]}" for _ in range(3))
    run(postgres_receiver.env, "-m", "tests.webhooks.statements", known)
    batch = [f"completed:{a}", f"completed:{known}", f"completed:{a}", f"declined:{b}", f"completed:{b}"]
    printed = run(postgres_receiver.env, "-m", "tests.webhooks.statements", "--together", *batch)
    answers, statements = json.loads(printed.strip().splitlines()[-1])
    assert answers == ["recorded", "duplicate", "duplicate", "no_consumer", "recorded"]
    claiming = [s for s in statements if s.lower().startswith("insert into certyneo_webhook_claim")]
    assert len(claiming) == 1, claiming
    assert "on conflict do nothing" in claiming[0].lower(), claiming
    assert [postgres_receiver.events_of(event_id) for event_id in (known, a, b)] == [1, 1, 1]


def test_drainers_in_several_processes_register_each_waiting_event_once(
    postgres_receiver: PostgresReceiver,
) -> None:
    """300 events in the inbox, as workers that stopped before draining leave them; three processes drain
    at once beside the receiver's two workers (``FOR UPDATE SKIP LOCKED``): each event becomes one asset
    event, and together the drainers took them all."""
    from sqlalchemy import create_engine, insert
    from sqlalchemy.orm import Session

    from airflow_provider_certyneo.plugins.claims import CLAIMS, INBOX, ensure_claim_table

    prefix = f"evt_drain_{uuid.uuid4().hex[:6]}_"
    ids = [f"{prefix}{i:03d}" for i in range(300)]
    now = datetime.now(timezone.utc)
    engine = create_engine(postgres_receiver.database_url)
    try:
        ensure_claim_table(engine)
        with Session(engine) as session, session.begin():
            session.execute(
                insert(CLAIMS), [{"asset_uri": URI, "event_id": e, "received_at": now} for e in ids]
            )
            rows = [
                {"asset_uri": URI, "event_id": e, "payload": json.dumps(payload_of(e)), "received_at": now}
                for e in ids
            ]
            session.execute(insert(INBOX), rows)
    finally:
        engine.dispose()
    drain = "from airflow_provider_certyneo.plugins.drainer import drain_pass; print(drain_pass())"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", drain],
            env=postgres_receiver.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    drained = [int(child.communicate(timeout=120)[0].strip().splitlines()[-1]) for child in children]
    assert all(child.returncode == 0 for child in children)
    assert sum(drained) <= len(ids)
    wait_until(
        lambda: postgres_receiver.sql("SELECT count(*) FROM certyneo_webhook_inbox") == [(0,)], timeout=30
    )
    counts = postgres_receiver.sql(
        "SELECT e.extra -> 'payload' ->> 'event_id', count(*) FROM asset_event e "
        "JOIN asset a ON a.id = e.asset_id "
        "WHERE a.uri = :uri AND e.extra -> 'payload' ->> 'event_id' LIKE :prefix GROUP BY 1",
        uri=URI,
        prefix=prefix + "%",
    )
    assert len(counts) == len(ids), f"{len(ids) - len(counts)} events never registered"
    assert {count for _, count in counts} == {1}, [row for row in counts if row[1] != 1][:5]
