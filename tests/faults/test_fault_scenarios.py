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
from airflow_provider_certyneo.hooks.base import USER_AGENT
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


def envelope_subjects(emulator: CertyneoEmulator) -> dict[str, str]:
    """Each envelope's subject, by id, as the server holds them."""
    with httpx.Client(
        base_url=f"{emulator.base_url}/api/v1", headers={"Authorization": f"Bearer {emulator.key}"}
    ) as api:
        subjects: dict[str, str] = {}
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = api.get("/envelopes", params=params).json()
            subjects.update((e["id"], e["subject"]) for e in page["data"])
            if not (cursor := page["nextCursor"]):
                return subjects


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
    assert ti.try_number == 1, "no try failed on a transient fault inside the retry budget"
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
    log = certyneo_emulator.control.requests()
    refused = certyneo_emulator.control.counters()["rateLimited"]
    view = server_view(certyneo_emulator)
    bulk = [e["at"] for e in log if e["userAgent"] == USER_AGENT]
    storm_429s = [e["at"] for e in log if e["userAgent"] != USER_AGENT and e["status"] == 429]
    during = [at for at in storm_429s if min(bulk) <= at <= max(bulk)]
    report(
        "429 storm from another process",
        contracts=CONTRACTS,
        sent=view["sent"],
        duplicates=view["duplicates"],
        failed=failed_tries(ti),
        orphan_drafts=view["orphan_drafts"],
        rate_limited=refused,
        storm_429s_during_the_bulk_run=len(during),
        task=ti.state,
    )
    assert refused > 0
    assert during, (
        f"the storm's 429s ({len(storm_429s)}) all fell outside the bulk run's requests "
        f"({min(bulk):.2f} to {max(bulk):.2f} on the server's clock): the run did not overlap the storm"
    )
    assert str(ti.state) == "success"
    assert ti.try_number == 1, "no try failed on the storm"
    assert view["sent"] == CONTRACTS
    assert view["duplicates"] == 0
    assert view["orphan_drafts"] == 0


def test_outage_longer_than_the_retry_budget(
    certyneo_emulator: CertyneoEmulator,
    airflow_db: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    report: Report,
    output: Callable[[], str],
) -> None:
    """Sending the first 8 envelopes answers 503 for exactly the hook's retry budget; the other 12 rows
    outlive the outage. The try fails naming exactly the 8 rows the server refused, each with its 503; the
    task's retry sends exactly those: by the server's request log, every envelope is sent once, the 12
    others never again."""
    attempts_per_send = FAST["max_retries"] + 1
    down = 8
    certyneo_emulator.control.set_faults(
        {"action": "error503", "method": "POST", "path": "/send$", "times": attempts_per_send, "paths": down}
    )
    ti = run_bulk(certyneo_emulator, tmp_path, monkeypatch, retries=1)
    logged = output()
    sends: dict[str, list[int]] = {}
    for entry in certyneo_emulator.control.requests():
        if entry["route"] == "POST /api/v1/envelopes/{id}/send":
            sends.setdefault(entry["path"].split("/")[4], []).append(entry["status"])
    view = server_view(certyneo_emulator)
    subjects = envelope_subjects(certyneo_emulator)
    row_of = {envelope_id: "client-" + subjects[envelope_id].rsplit(" ", 1)[-1] for envelope_id in sends}
    refused = {row_of[e] for e, statuses in sends.items() if statuses.count(503) == attempts_per_send}
    failure = next(iter(re.findall(r"\d+ of \d+ contracts were not sent", logged)), "")
    named = dict(re.findall(r"^\s*row (client-\d+): (.*)$", logged, re.MULTILINE))
    report(
        "503s on the sends of 8 envelopes for longer than the retry budget",
        contracts=CONTRACTS,
        sent=view["sent"],
        duplicates=view["duplicates"],
        failed=f"[bulk try 1: {failure}: {sorted(named)}]",
        orphan_drafts=view["orphan_drafts"],
        task=ti.state,
    )
    assert len(refused) == down, f"the server refused {sorted(refused)}"
    assert failure == f"{down} of {CONTRACTS} contracts were not sent"
    assert set(named) == refused, "the failure names exactly the rows the server refused"
    for row, reason in named.items():
        assert "503" in reason, f"row {row}'s line says why: {reason!r}"
    assert str(ti.state) == "success"
    assert ti.try_number == 2
    assert len(sends) == CONTRACTS
    for envelope_id, statuses in sends.items():
        expected = [503] * attempts_per_send + [200] if row_of[envelope_id] in refused else [200]
        assert statuses == expected, f"{row_of[envelope_id]} ({envelope_id}) was sent {statuses}"
    assert certyneo_emulator.control.counters()["sends"] == dict.fromkeys(sends, 1)
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
