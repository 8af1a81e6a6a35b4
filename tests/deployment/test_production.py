"""The provider in a production-shaped deployment (tests/support/production.py): PostgreSQL, CeleryExecutor
with Redis, two Celery workers sharing nothing but Redis, two triggerers, an API server with two workers,
the provider installed from its wheel. On a scaled clock (the key at 600 requests/min, burst 20, so that
the pace binds within seconds; a triggerer's capacity of 8):

- the per-contract bulk example sends every contract while nobody signs, on both workers, with no 429
  (the workers' only shared state is Redis), each envelope once; its 12 waits, deferred on both triggerers
  (neither takes more than its capacity), poll within the key's poll budget together, though each polls
  as often as it may; then everyone signs and the run succeeds;
- a burst of signed webhook deliveries, each posted as three concurrent copies to the two API-server
  workers, is recorded once per event on PostgreSQL;
- the Signatures view, signed in through Airflow's FAB auth manager as a user whose role may read one DAG
  of two that both have envelopes waiting, shows that DAG's envelopes only, and refuses the other's run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_certyneo.client.defaults import POLL_SHARE
from airflow_provider_certyneo.emulator.handle import EmulatorControl, connection_json
from airflow_provider_certyneo.emulator.server import EmulatorProcess
from tests.support.airflow_runs import EXAMPLES
from tests.support.fab import FabUser, dag_reader
from tests.support.manifests import write_manifest
from tests.support.polling import wait_until
from tests.support.postgres import require_postgres
from tests.support.production import TRIGGERERS, WORKERS, ProductionDeployment, production_stack
from tests.support.redis import require_redis_server

pytestmark = [
    pytest.mark.deployment,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.timeout(1500),
]
KEY = "sk_test_" + "p" * 32
SECRET = "whsec_" + "q" * 32
RATE, BURST = 600, 20
CONTRACTS = 12
# a triggerer takes up to this many triggers: the 12 waits need both (as 2,000 waits need room on several)
CAPACITY = 8
DAG, ARCHIVE, EVENTS_CONN = "certyneo_bulk_per_contract", "certyneo_archive_signed", "certyneo_events"
LIST = "GET /api/v1/envelopes"
DELIVERIES, COPIES, SENDERS = 200, 3, 16
# the Signatures view's permissions: a user who may read the quick start, not the TaskFlow quick start
READABLE, HIDDEN = "certyneo_quickstart", "certyneo_taskflow"
WAITS = {READABLE: "send_and_wait", HIDDEN: "wait_for_signature"}  # the task that waits, deferred
READER_ROLE = dag_reader("CertyneoQuickstartReader", READABLE)
READER = FabUser("reader", "reader-password", READER_ROLE.name)


@dataclass
class Production:
    deployment: ProductionDeployment
    emulator: EmulatorControl
    manifest: Path


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Production]:
    require_postgres()
    require_redis_server()
    tmp = tmp_path_factory.mktemp("production")
    manifest = write_manifest(tmp / "drop", CONTRACTS, digits=3)
    with EmulatorProcess(KEY, per_minute=RATE, burst=BURST) as emulator:
        control = EmulatorControl(emulator.base_url)
        pace = {"rate_limit_per_minute": RATE, "rate_limit_burst": BURST}
        env = {
            "AIRFLOW_CONN_CERTYNEO_DEFAULT": connection_json(
                emulator.base_url, KEY, rate_limit_redis_conn_id="redis_default", **pace
            ),
            "AIRFLOW_CONN_CERTYNEO_EVENTS": connection_json(emulator.base_url, KEY, webhook_secret=SECRET),
            "CERTYNEO_BULK_MANIFEST": str(manifest),
            "CERTYNEO_ARCHIVE": f"file://{tmp / 'archive'}",
            # polling as often as it may: the poll budget, shared through Redis, is what holds it back
            "CERTYNEO_POLL_INTERVAL": "0.1",
            "AIRFLOW__TRIGGERER__CAPACITY": str(CAPACITY),
            "CERTYNEO_CONN_ID": EVENTS_CONN,
        }
        try:
            started = time.monotonic()
            with production_stack(tmp, EXAMPLES, env, roles=(READER_ROLE,), users=(READER,)) as deployment:
                for dag_id in (DAG, ARCHIVE, READABLE, HIDDEN):
                    deployment.stack.api.wait_for_dag(dag_id)
                steps = ", ".join(f"{k} {v:.1f} s" for k, v in deployment.stack.setup_seconds.items())
                took = time.monotonic() - started
                print(f"\nthe production-shaped deployment set up in {took:.0f} s (of which {steps})")
                yield Production(deployment, control, manifest)
        finally:
            control.close()


def test_the_provider_runs_from_its_wheel(production: Production) -> None:
    location = production.deployment.provider_location()
    assert "/site-packages/airflow_provider_certyneo/" in location, location
    assert not location.startswith(str(Path(__file__).resolve().parents[2] / "airflow_provider_certyneo"))


def test_an_event_recorded_before_a_restart_is_registered_with_no_request(production: Production) -> None:
    """What an API-server worker that stopped between answering a delivery and registering it leaves behind:
    a claim and an inbox row. The workers' drainers, started with the workers (the plugin's root
    middleware), register it without any request to the plugin (this runs before any test makes one)."""
    from sqlalchemy import create_engine, insert

    from airflow_provider_certyneo.plugins.claims import CLAIMS, INBOX, ensure_claim_table
    from airflow_provider_certyneo.plugins.drainer import POLL_SECONDS

    stack = production.deployment.stack
    api = stack.api
    uri = f"certyneo://{EVENTS_CONN}/envelopes/completed"
    asset = next(a for a in api.json("GET", "/assets")["assets"] if a["uri"] == uri)
    event_id = f"evt_left_behind_{uuid.uuid4().hex[:12]}"
    payload = {
        "envelope_id": "env_left_behind",
        "event_id": event_id,
        "status": "COMPLETED",
        "recipients": [],
    }
    now = datetime.now(timezone.utc)
    engine = create_engine(stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    try:
        ensure_claim_table(engine)
        with engine.begin() as connection:
            connection.execute(insert(CLAIMS).values(asset_uri=uri, event_id=event_id, received_at=now))
            connection.execute(
                insert(INBOX).values(
                    asset_uri=uri, event_id=event_id, payload=json.dumps(payload), received_at=now
                )
            )
    finally:
        engine.dispose()

    def registered() -> list[dict[str, Any]]:
        events = api.json("GET", "/assets/events", params={"asset_id": asset["id"], "limit": 100})
        return [e for e in events["asset_events"] if (e["extra"] or {}).get("payload") == payload]

    (event,) = wait_until(registered, timeout=POLL_SECONDS + 30, what="the left-behind event's asset event")
    assert event["extra"]["payload"]["event_id"] == event_id


def last_seq(emulator: EmulatorControl) -> int:
    log = emulator.requests()
    return int(log[-1]["seq"]) if log else 0


def test_a_bulk_run_on_two_workers_and_two_triggerers(production: Production) -> None:
    stack, emulator = production.deployment.stack, production.emulator
    api = stack.api
    emulator.configure(autoSignAfter=None)
    api.set_pool("certyneo_api", 8, "Certyneo key")
    api.unpause(DAG)
    began = time.monotonic()
    run_id = api.trigger(DAG, {"manifest": str(production.manifest)})

    triggerers: dict[int, str] = {}

    def sent_and_waiting() -> bool:
        assert api.run_state(DAG, run_id) in ("queued", "running"), stack.tail()
        waiting = [ti for ti in api.task_instances(DAG, run_id) if ti["task_id"] == "wait_signed"]
        for ti in waiting:  # which triggerer runs each wait (cleared once the trigger has fired)
            host = (ti.get("triggerer_job") or {}).get("hostname")
            if ti["state"] == "deferred" and host:
                triggerers[ti["map_index"]] = host
        deferred = sum(1 for ti in waiting if ti["state"] == "deferred")
        return len(emulator.counters()["sends"]) >= CONTRACTS and len(triggerers) == deferred == CONTRACTS

    wait_until(sent_and_waiting, 600, 1.0, "every contract sent and every wait deferred", detail=stack.tail)
    print(f"\n{CONTRACTS} contracts sent and waiting after {time.monotonic() - began:.0f} s")
    # the waits poll for a while with nobody signing: the two triggerers' pollers together
    since, window_start = last_seq(emulator), time.monotonic()
    time.sleep(6)
    seconds = time.monotonic() - window_start
    polls = sum(1 for r in emulator.requests(since=since) if r["route"] == LIST)
    budget = POLL_SHARE * (RATE / 60 * seconds + BURST)
    print(f"polls in {seconds:.1f} s of waiting: {polls} (budget {budget:.0f})")
    assert 0 < polls <= budget

    for envelope_id in emulator.counters()["sends"]:
        emulator.sign(envelope_id)
    assert api.wait_for_run(DAG, run_id, timeout=300) == "success", stack.tail()
    tis = api.task_instances(DAG, run_id)
    counters = emulator.counters()
    assert counters["rateLimited"] == 0, counters
    assert len(counters["sends"]) == CONTRACTS
    assert set(counters["sends"].values()) == {1}, "every envelope sent exactly once"
    hosts = Counter(ti["hostname"] for ti in tis if ti["task_id"] in ("upload", "create", "send"))
    print(f"task instances per worker: {dict(hosts)}")
    assert set(hosts) == set(WORKERS), hosts
    per_triggerer = Counter(triggerers.values())
    print(f"waits per triggerer: {dict(per_triggerer)}")
    assert set(per_triggerer) == set(TRIGGERERS), per_triggerer
    assert max(per_triggerer.values()) <= CAPACITY
    assert KEY not in stack.log("api-server")


def delivery(envelope_id: str) -> bytes:
    created = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    envelope = {"id": envelope_id, "subject": "Contrat", "status": "COMPLETED", "recipients": []}
    event = {"id": f"evt_{uuid.uuid4().hex}", "type": "envelope.completed", "createdAt": created}
    return json.dumps({**event, "data": {"envelope": envelope}}).encode()


def test_a_webhook_burst_with_concurrent_copies_is_recorded_once_per_event(production: Production) -> None:
    stack = production.deployment.stack
    api = stack.api
    receiver = f"{stack.base_url}/certyneo/webhooks/{EVENTS_CONN}"
    asset = next(
        a for a in api.json("GET", "/assets")["assets"] if EVENTS_CONN in a["uri"] and "completed" in a["uri"]
    )
    before = api.json("GET", "/assets/events", params={"asset_id": asset["id"], "limit": 1})["total_entries"]
    bodies = [delivery(f"env_burst_{n:04}") for n in range(DELIVERIES)]
    posts = [body for body in bodies for _ in range(COPIES)]

    def post(body: bytes) -> str:
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        answer = client.post(receiver, content=body, headers={"X-Certyneo-Signature": signature})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["status"])

    started = time.monotonic()
    limits = httpx.Limits(max_connections=SENDERS, max_keepalive_connections=SENDERS)
    # one client for all senders (a client per post spends more on its own set-up than the receiver does)
    with httpx.Client(timeout=60, limits=limits) as client, ThreadPoolExecutor(SENDERS) as senders:
        statuses = Counter(senders.map(post, posts))
    took = time.monotonic() - started
    print(
        f"\n{len(posts)} deliveries ({DELIVERIES} events × {COPIES} copies) in {took:.1f} s: {dict(statuses)}"
    )
    assert statuses == {"recorded": DELIVERIES, "duplicate": DELIVERIES * (COPIES - 1)}, statuses

    def registered() -> int:  # the API workers' drainers register what the answers recorded
        events = api.json("GET", "/assets/events", params={"asset_id": asset["id"], "limit": 1})
        return int(events["total_entries"]) - before

    wait_until(lambda: registered() >= DELIVERIES, timeout=60, what="the burst's asset events")
    assert registered() == DELIVERIES, "an event was registered twice"


def test_the_signatures_view_shows_a_user_only_the_dags_they_may_read(production: Production) -> None:
    """Signed in through FAB as a user whose role may read ``READABLE`` (``DAG:<id>``) and not ``HIDDEN``,
    both with an envelope waiting: Browse › Signatures lists only the readable DAG's envelope and says it
    counts one DAG, the hidden DAG's run page is refused (403) while the readable one's shows its envelope,
    and nothing is shown without a token. The admin sees both envelopes (the control: the hidden one is
    there to be leaked). Asserted on the HTML the real API server answers."""
    stack, emulator = production.deployment.stack, production.emulator
    api = stack.api
    emulator.configure(autoSignAfter=None)
    for dag_id in WAITS:
        api.unpause(dag_id)
    runs = {dag_id: api.trigger(dag_id) for dag_id in WAITS}

    def waiting() -> bool:
        for dag_id, run_id in runs.items():
            assert api.run_state(dag_id, run_id) in ("queued", "running"), stack.tail()
        return all(
            api.task_instance(dag_id, runs[dag_id], task_id)["state"] == "deferred"
            for dag_id, task_id in WAITS.items()
        )

    wait_until(waiting, 300, 1.0, "both DAGs' envelopes sent and waiting", detail=stack.tail)
    envelope = {
        dag_id: api.json(
            "GET", f"/dags/{dag_id}/dagRuns/{runs[dag_id]}/taskInstances/{task_id}/xcomEntries/envelope_id"
        )["value"]
        for dag_id, task_id in WAITS.items()
    }
    waiting_path = "/certyneo/signatures/waiting"
    run_path = {dag_id: f"/certyneo/signatures/runs/{dag_id}/{run_id}" for dag_id, run_id in runs.items()}

    admin_page = api.page(waiting_path)
    assert admin_page.status_code == 200, admin_page.text[:2000]
    for dag_id in WAITS:  # the control: both envelopes are waiting, for whoever may read both DAGs
        assert envelope[dag_id] in admin_page.text
        assert f"/dags/{dag_id}/runs/" in admin_page.text

    reader = stack.rest_api(READER.username, READER.password)
    try:
        page = reader.page(waiting_path)
        assert page.status_code == 200, page.text[:2000]
        html = page.text
        assert envelope[HIDDEN] not in html, f"{HIDDEN}'s envelope is listed to a user who may not read it"
        assert HIDDEN not in html, f"{HIDDEN}, which the user may not read, is named"
        assert envelope[READABLE] in html, html[:3000]
        assert f"{READABLE} / " in html
        assert "1 waiting." in html, html[:3000]
        readable = re.search(r"the DAGs you may read \((\d+)\)", html)
        assert readable is not None, html[:2000]
        assert readable.group(1) == "1", f"the reader may read 1 DAG, the page says {readable.group(1)}"

        own = reader.page(run_path[READABLE])
        assert own.status_code == 200, own.text[:2000]
        assert envelope[READABLE] in own.text, own.text[:3000]
        assert "SENT" in own.text
        other = reader.page(run_path[HIDDEN])
        assert other.status_code == 403, f"{other.status_code}: {other.text[:2000]}"
        assert envelope[HIDDEN] not in other.text
    finally:
        reader.close()

    for path in (waiting_path, *run_path.values()):  # no token: refused, or sent to the login page
        anonymous = httpx.get(f"{stack.base_url}{path}", follow_redirects=False, timeout=30)
        assert anonymous.status_code in (401, 302, 303, 307), f"{path}: {anonymous.status_code}"
        assert not any(e in anonymous.text for e in envelope.values())
