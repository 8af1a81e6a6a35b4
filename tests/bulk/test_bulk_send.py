"""The bulk operator in real DAG runs: good and bad rows, exactly-once across a kill and a retry, waiting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.operators.bulk import CertyneoBulkSendOperator
from tests.support.airflow_runs import run_dag
from tests.support.manifests import write_manifest
from tests.support.polling import wait_until

# built, not written: DAG files are stored in the database test_secrets searches for sign URLs
SIGN_PATH = "/".join(["", "sign", ""])
START = pendulum.datetime(2026, 1, 1, tz="UTC")


def task_instances(run: Any) -> dict[str, Any]:
    return {ti.task_id: ti for ti in run.get_task_instances()}


@pytest.mark.slow
def test_bad_rows_do_not_stop_the_good_ones(
    certyneo_emulator: CertyneoEmulator, airflow_db: None, tmp_path: Path, output: Any
) -> None:
    manifest = write_manifest(
        tmp_path, 6, bad={1: {"pdf": "pdfs/missing.pdf"}, 4: {"signer_email": "not-an-email"}}
    )
    with DAG("bulk_bad_rows", schedule=None, start_date=START) as dag:
        CertyneoBulkSendOperator(task_id="bulk", manifest=str(manifest), retries=2)
    tis = task_instances(run_dag(dag))
    assert str(tis["bulk"].state) == "failed"
    assert tis["bulk"].try_number == 1, "bad rows are not retried"
    text = output()
    assert "2 of 6 contracts were not sent" in text
    assert "row client-1: document" in text
    assert "missing.pdf does not exist" in text
    assert "row client-4: recipients[0].email 'not-an-email' is not a valid e-mail address" in text
    sends = certyneo_emulator.control.counters()["sends"]
    assert len(sends) == 4
    assert set(sends.values()) == {1}


def test_every_row_sent_once_and_waited_for(
    certyneo_emulator: CertyneoEmulator, airflow_db: None, tmp_path: Path
) -> None:
    certyneo_emulator.control.configure(autoSignAfter=0.3, ratePerMinute=60_000, burst=200)
    rows = [
        {
            "pdf": str(write_manifest(tmp_path, 1).parent / "pdfs" / "client-0.pdf"),
            "subject": f"Offer {i}",
            "recipients": [{"email": f"c{i}@example.com", "name": f"C {i}"}],
        }
        for i in range(12)
    ]
    with DAG("bulk_list_wait", schedule=None, start_date=START) as dag:
        CertyneoBulkSendOperator(
            task_id="bulk",
            contracts=rows,
            journal=str(tmp_path / "journal.jsonl"),
            wait_for_completion=True,
            deferrable=True,
            poll_interval=0.2,
        )
    tis = task_instances(run_dag(dag))
    assert str(tis["bulk"].state) == "success"
    summary = tis["bulk"].xcom_pull(task_ids="bulk", key="summary")
    assert len(summary["completed"]) == 12
    counters = certyneo_emulator.control.counters()
    assert len(counters["sends"]) == 12
    assert set(counters["sends"].values()) == {1}


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "in the worker"])
def test_a_waiting_bulk_run_returns_its_rows_however_it_waits(
    certyneo_emulator: CertyneoEmulator, airflow_db: None, tmp_path: Path, deferrable: bool
) -> None:
    """After waiting, the task returns the rows it sent, each with the status the wait saw (COMPLETED),
    whether it deferred or waited in the worker (issue 22, bug 1: the in-worker wait returned the rows as
    sent, SENT; the deferred one returned only ids and statuses)."""
    certyneo_emulator.control.configure(autoSignAfter=0.2)
    pdf = str(write_manifest(tmp_path, 1).parent / "pdfs" / "client-0.pdf")
    rows = [
        {
            "pdf": pdf,
            "subject": f"Offer {i}",
            "recipients": [{"email": f"c{i}@example.com", "name": f"C {i}"}],
        }
        for i in range(3)
    ]
    with DAG(f"bulk_returns_rows_{int(deferrable)}", schedule=None, start_date=START) as dag:
        CertyneoBulkSendOperator(
            task_id="bulk",
            contracts=rows,
            journal=str(tmp_path / "journal.jsonl"),
            wait_for_completion=True,
            deferrable=deferrable,
            poll_interval=0.2,
        )
    tis = task_instances(run_dag(dag))
    assert str(tis["bulk"].state) == "success"
    returned = tis["bulk"].xcom_pull(task_ids="bulk")
    assert sorted(r["row"] for r in returned) == ["1", "2", "3"]  # rows are numbered from 1
    assert {r["status"] for r in returned} == {"COMPLETED"}
    assert all(r["envelope_id"] and r["error"] is None for r in returned)


KILLABLE = """
import os, sys, json
os.environ.setdefault("AIRFLOW_HOME", sys.argv[3])
from airflow_provider_certyneo.bulk.journal import Journal
from airflow_provider_certyneo.bulk.manifest import read_manifest
from airflow_provider_certyneo.bulk.pipeline import send_all
import asyncio
asyncio.run(send_all("certyneo_default", read_manifest(sys.argv[1]), Journal(sys.argv[2]), 8))
"""


@pytest.mark.slow
def test_killed_half_way_then_retried_sends_each_once(
    certyneo_emulator: CertyneoEmulator, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker dies in the middle of a bulk run (SIGKILL); the retried task sends each contract once."""
    rows = 40
    certyneo_emulator.control.configure(ratePerMinute=3000, burst=10)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CERTYNEO_DEFAULT",
        certyneo_emulator.connection_json(rate_limit_per_minute=3000, rate_limit_burst=10),
    )
    manifest = write_manifest(tmp_path, rows)
    journal = tmp_path / "shared" / "journal.jsonl"
    worker = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, str(manifest), str(journal), os.environ["AIRFLOW_HOME"]],
        env=os.environ.copy(),
    )

    def a_third_sent() -> bool:
        assert worker.poll() is None, "the worker finished before it could be killed"
        return len(certyneo_emulator.control.counters()["sends"]) >= rows // 3

    wait_until(a_third_sent, timeout=60, interval=0.05, what="a third of the contracts sent")
    worker.kill()
    worker.wait()
    sent_before = len(certyneo_emulator.control.counters()["sends"])
    assert 0 < sent_before < rows
    with DAG("bulk_retry", schedule=None, start_date=START) as dag:
        CertyneoBulkSendOperator(task_id="bulk", manifest=str(manifest), journal=str(journal))
    tis = task_instances(run_dag(dag))
    assert str(tis["bulk"].state) == "success"
    counters = certyneo_emulator.control.counters()
    assert len(counters["sends"]) == rows
    assert set(counters["sends"].values()) == {1}
    results = tis["bulk"].xcom_pull(task_ids="bulk")
    assert sorted(r["row"] for r in results) == sorted(f"client-{i}" for i in range(rows))
    assert counters["envelopes"] == rows, "no duplicate drafts either"


def test_manifest_errors_name_the_problem(tmp_path: Path) -> None:
    from airflow_provider_certyneo.bulk.manifest import read_manifest
    from airflow_provider_certyneo.exceptions import CertyneoValidationError

    latin = tmp_path / "latin1.csv"
    latin.write_bytes("pdf,subject\nx.pdf,Contrat é\n".encode("latin-1"))
    with pytest.raises(CertyneoValidationError, match="not UTF-8 \\(bad byte at line 2\\)"):
        read_manifest(latin)
    no_pdf = tmp_path / "cols.csv"
    no_pdf.write_text("file,subject\n")
    with pytest.raises(CertyneoValidationError, match="no pdf column"):
        read_manifest(no_pdf)
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text(
        json.dumps({"pdf": "a.pdf", "subject": "S", "signer_email": "a@example.com", "signer_name": "A"})
        + "\n{broken\n"
    )
    first, second = read_manifest(jsonl)
    assert first.error is None
    assert second.error is not None
    assert "not valid JSON" in second.error


def test_hostile_and_huge_manifests(tmp_path: Path) -> None:
    from airflow_provider_certyneo.bulk.manifest import read_manifest
    from airflow_provider_certyneo.exceptions import CertyneoValidationError

    hostile = tmp_path / "hostile.csv"
    hostile.write_text(
        "pdf,subject,signer_email,signer_name\n../../etc/passwd,S,a@example.com,A\n"
        "ok.pdf,S2,b@example.com,B\n"
    )
    bad, good = read_manifest(hostile)
    assert bad.error is not None
    assert "leaves the manifest's folder" in bad.error
    assert good.error is None
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as handle:
        handle.write(b"pdf,subject\n")
        handle.truncate(51 * 1024 * 1024)
    with pytest.raises(CertyneoValidationError, match="over 50 MiB"):
        read_manifest(huge)


@pytest.mark.asyncio
async def test_progress_lines_come_once_per_interval_and_only_when_a_count_moved() -> None:
    """The progress reporter driven by counts and a controlled interval (no clock): one line at the end of
    an interval in which a count moved, none after an interval in which nothing did."""
    import asyncio

    from airflow_provider_certyneo.bulk.progress import BulkProgress

    progress = BulkProgress(total=10, rate_per_minute=60, uploads_needed=1)
    ticks: asyncio.Queue[None] = asyncio.Queue()
    waiting = asyncio.Event()
    lines: list[str] = []

    async def tick() -> None:
        waiting.set()
        await ticks.get()

    async def interval_ends() -> None:
        """End one interval and let the reporter come back to its next one."""
        await waiting.wait()
        waiting.clear()
        ticks.put_nowait(None)
        await waiting.wait()

    reporter = asyncio.create_task(progress.report(lines.append, tick=tick))
    await interval_ends()
    assert lines == [], "nothing moved: no line"
    progress.sent, progress.failed = 3, 1
    await interval_ends()
    assert lines == ["3/10 sent, 1 failed, about 13 s left at the key's rate (60/min)"]
    await interval_ends()
    assert len(lines) == 1, "the same counts: no second line"
    progress.sent = 4
    progress.sent = 9  # several moves within one interval: still one line
    await interval_ends()
    assert lines[1:] == ["9/10 sent, 1 failed"]
    reporter.cancel()


@pytest.mark.slow
def test_a_bulk_run_of_200_logs_progress_every_few_seconds_and_a_summary(
    certyneo_emulator: CertyneoEmulator, airflow_db: None, tmp_path: Path, output: Any, monkeypatch: Any
) -> None:
    """200 contracts at a scaled rate (3,000/min: a few seconds at a 1 s ``progress_interval``): a line per
    interval while it moves, never per row and never twice for the same counts, with the time left; then
    the summary table. (That a line comes only once per interval, and only when a count moved, is checked
    without a clock by ``test_progress_lines_come_once_per_interval_and_only_when_a_count_moved``.)"""
    certyneo_emulator.control.configure(ratePerMinute=3000, burst=10)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CERTYNEO_DEFAULT",
        certyneo_emulator.connection_json(rate_limit_per_minute=3000, rate_limit_burst=10),
    )
    manifest = write_manifest(tmp_path, 200)
    with DAG("bulk_progress", schedule=None, start_date=START) as dag:
        CertyneoBulkSendOperator(task_id="bulk", manifest=str(manifest), progress_interval=1.0)
    tis = task_instances(run_dag(dag))
    assert str(tis["bulk"].state) == "success"
    text = output()
    # structlog's lines start with their timestamp (caplog repeats them without)
    lines = [line for line in text.splitlines() if "/200 sent, " in line and line[:4].isdigit()]
    counts = [int(line.split("/200 sent, ")[0].rsplit(" ", 1)[-1]) for line in lines]
    log = certyneo_emulator.control.requests()
    run_seconds = log[-1]["at"] - log[0]["at"]  # the server's clock: first request to last
    print("progress lines:", *lines, f"over {run_seconds:.1f} s", sep="\n")
    assert counts == sorted(set(counts)), f"a line only when a count moved: {counts}"
    assert 2 <= len(lines) <= run_seconds / 1.0 + 2, lines  # a line per interval, and the final count
    assert " left at the key's rate (3000/min)" in lines[0]
    assert "200/200 sent, 0 failed" in lines[-1]
    assert "Bulk send summary (" in text
    table = text[text.index("Bulk send summary (") :]
    assert "  sent " in table, table[:500]
    assert "  total " in table, table[:500]
    assert certyneo_emulator.key not in text
    assert SIGN_PATH not in text
    assert len(certyneo_emulator.control.counters()["sends"]) == 200
