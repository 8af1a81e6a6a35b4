"""Whole runs under injected faults. Invariants come from the emulator's counters, not the client's view:
every contract sent exactly once, none lost, no orphan draft left, and every task either succeeded or
failed saying why; no task fails because of a transient fault inside the retry budget."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.operators.bulk import CertyneoBulkSendOperator
from tests.faults.conftest import Report
from tests.hooks.test_reliability import STORM
from tests.support.airflow_runs import run_dag
from tests.support.manifests import write_manifest

pytestmark = [pytest.mark.faults, pytest.mark.serial]  # timing-sensitive: not in parallel
START = pendulum.datetime(2026, 1, 1, tz="UTC")
CONTRACTS = 20
FAST: dict[str, Any] = {"backoff_base": 0.02, "backoff_cap": 0.2, "max_retries": 6}
MUTATING = "POST|PATCH|DELETE"


def server_view(emulator: CertyneoEmulator) -> dict[str, Any]:
    """What the emulator holds: envelopes by subject and status, sends per envelope."""
    with httpx.Client(
        base_url=f"{emulator.base_url}/api/v1", headers={"Authorization": f"Bearer {emulator.key}"}
    ) as api:
        emulator.control.clear_faults()
        emulator.control.configure(ratePerMinute=1_000_000, burst=100_000)
        envelopes, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = api.get("/envelopes", params=params).json()
            envelopes += page["data"]
            if not (cursor := page["nextCursor"]):
                break
    sends = emulator.control.counters()["sends"]
    sent_subjects = Counter(e["subject"] for e in envelopes if sends.get(e["id"], 0) > 0)
    return {
        "sent": len(sent_subjects),
        "duplicates": sum(n - 1 for n in sent_subjects.values())
        + sum(n - 1 for n in sends.values() if n > 1),
        "orphan_drafts": sum(1 for e in envelopes if e["status"] == "DRAFT"),
    }


def run_bulk(
    emulator: CertyneoEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    retries: int = 4,
    **extra: Any,
) -> Any:
    monkeypatch.setenv("AIRFLOW_CONN_CERTYNEO_DEFAULT", emulator.connection_json(**{**FAST, **extra}))
    manifest = write_manifest(tmp_path, CONTRACTS)
    with DAG(f"faults_{tmp_path.name[-20:]}", schedule=None, start_date=START) as dag:
        CertyneoBulkSendOperator(
            task_id="bulk", manifest=str(manifest), retries=retries, retry_delay=timedelta(seconds=0)
        )
    run = run_dag(dag)
    (ti,) = run.get_task_instances()
    return ti


def failed_tries(ti: Any) -> str:
    """The bulk task's tries that failed before the last one (none when the first try succeeded)."""
    return "none" if ti.try_number == 1 else f"{ti.try_number - 1} (retried)"


@pytest.mark.parametrize(
    ("scenario", "rules"),
    [
        (
            "5xx bursts on every route",
            [{"action": "error500", "probability": 0.15}, {"action": "error503", "probability": 0.15}],
        ),
        (
            "latency and connection resets",
            [
                {"action": "latency", "seconds": 0.05, "probability": 0.5},
                {"action": "reset", "probability": 0.15},
            ],
        ),
        (
            "lost answers on every mutating route",
            [{"action": "lost", "method": m, "probability": 0.25} for m in MUTATING.split("|")],
        ),
    ],
)
def test_bulk_run_under_faults(
    certyneo_emulator: CertyneoEmulator,
    airflow_db: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    report: Report,
    scenario: str,
    rules: list[dict[str, Any]],
) -> None:
    certyneo_emulator.control.configure(ratePerMinute=60_000, burst=200)
    certyneo_emulator.control.set_faults(*rules, seed=7)
    ti = run_bulk(
        certyneo_emulator, tmp_path, monkeypatch, rate_limit_per_minute=60_000, rate_limit_burst=200
    )
    fired = sum(rule["fired"] for rule in certyneo_emulator.control.faults())
    view = server_view(certyneo_emulator)
    report(
        scenario,
        contracts=CONTRACTS,
        sent=view["sent"],
        duplicates=view["duplicates"],
        failed=failed_tries(ti),
        orphan_drafts=view["orphan_drafts"],
        faults_fired=fired,
        task=ti.state,
    )
    assert fired > 0
    assert str(ti.state) == "success"
    assert view["sent"] == CONTRACTS
    assert view["duplicates"] == 0
    assert view["orphan_drafts"] == 0


@pytest.mark.slow
def test_bulk_run_through_a_429_storm(
    certyneo_emulator: CertyneoEmulator,
    airflow_db: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    report: Report,
) -> None:
    """Another process shares the key and keeps it at its limit while the bulk task runs."""
    certyneo_emulator.control.configure(ratePerMinute=1200, burst=20)
    storm = subprocess.Popen(
        [sys.executable, "-c", STORM, certyneo_emulator.base_url, certyneo_emulator.key, "4", "0.02"]
    )
    try:
        ti = run_bulk(
            certyneo_emulator, tmp_path, monkeypatch, rate_limit_per_minute=1200, rate_limit_burst=20
        )
    finally:
        storm.wait(timeout=30)
    refused = certyneo_emulator.control.counters()["rateLimited"]
    view = server_view(certyneo_emulator)
    report(
        "429 storm from another process",
        contracts=CONTRACTS,
        sent=view["sent"],
        duplicates=view["duplicates"],
        failed=failed_tries(ti),
        orphan_drafts=view["orphan_drafts"],
        rate_limited=refused,
        task=ti.state,
    )
    assert refused > 0
    assert str(ti.state) == "success"
    assert view["sent"] == CONTRACTS
    assert view["duplicates"] == 0


def test_outage_longer_than_the_retry_budget(
    certyneo_emulator: CertyneoEmulator,
    airflow_db: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    report: Report,
    output: Callable[[], str],
) -> None:
    """Sending answers 503 for longer than the hook's retry budget: the try fails saying which rows and why,
    and the task's retry (the outage over) sends exactly those rows, nothing twice."""
    attempts_per_send = FAST["max_retries"] + 1
    certyneo_emulator.control.set_faults(
        {"action": "error503", "method": "POST", "path": "/send$", "times": CONTRACTS * attempts_per_send}
    )
    ti = run_bulk(certyneo_emulator, tmp_path, monkeypatch, retries=1)
    logged = output()
    failure = next(iter(re.findall(r"\d+ of \d+ contracts were not sent", logged)), "")
    reason = next(
        (line.strip() for line in logged.splitlines() if line.strip().startswith("row client-")), ""
    )
    view = server_view(certyneo_emulator)
    report(
        "503s on send for longer than the retry budget",
        contracts=CONTRACTS,
        sent=view["sent"],
        duplicates=view["duplicates"],
        failed=f"[bulk try 1: {failure}, e.g. {reason!r}]",
        orphan_drafts=view["orphan_drafts"],
        task=ti.state,
    )
    assert "20 of 20 contracts were not sent" in failure
    assert "503" in reason
    assert str(ti.state) == "success"
    assert ti.try_number == 2
    assert view["sent"] == CONTRACTS
    assert view["duplicates"] == 0
    assert view["orphan_drafts"] == 0


@pytest.mark.asyncio
async def test_trigger_rebuilt_from_serialize_resumes(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, report: Report
) -> None:
    """A triggerer dies mid-wait; another one rebuilds the trigger from its serialized kwargs and finishes."""
    import asyncio

    from airflow_provider_certyneo.hooks.certyneo import CertyneoHook
    from airflow_provider_certyneo.triggers.envelope import CertyneoEnvelopeTrigger

    with CertyneoHook() as hook:
        envelope = hook.create_envelope(
            "Restart", [hook.upload_document(pdf_file)["id"]], [{"email": "a@example.com", "name": "A"}]
        )
        sent = hook.send_envelope(envelope["id"])
    first = CertyneoEnvelopeTrigger(envelope["id"], poll_interval=0.1, known_as_of=sent["updatedAt"])

    async def first_event() -> Any:
        async for event in first.run():
            return event

    runner = asyncio.create_task(first_event())
    await asyncio.sleep(0.5)
    runner.cancel()
    _, kwargs = first.serialize()
    await asyncio.to_thread(certyneo_emulator.control.sign, envelope["id"])
    rebuilt = CertyneoEnvelopeTrigger(**kwargs)
    event = await asyncio.wait_for(rebuilt.run().__anext__(), 10)
    sends = certyneo_emulator.control.counters()["sends"]
    report(
        "triggerer died mid-wait, trigger rebuilt from serialize()",
        contracts=1,
        sent=len(sends),
        duplicates=sum(n - 1 for n in sends.values()),
        event=event.payload["status"],
    )
    assert event.payload["status"] == "success"
