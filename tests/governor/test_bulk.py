"""Bulk runs on the shared governor: one upload per distinct PDF (also across a resumed run, only for the
same key), and a run that survives its rate store failing under it (Redis killed, the state file deleted
or overwritten with garbage) — every contract sent once, nothing failed."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_certyneo.bulk import pipeline
from airflow_provider_certyneo.bulk.journal import Journal
from airflow_provider_certyneo.bulk.manifest import Contract, contracts_from_list
from airflow_provider_certyneo.bulk.pipeline import send_all
from airflow_provider_certyneo.client.files import InspectedPdf, inspect_pdf
from airflow_provider_certyneo.emulator.pdf import text_pdf
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.governor.stores import STATE_DIR_ENV
from airflow_provider_certyneo.hooks import certyneo_async
from tests.support.redis import RedisServer

pytestmark = pytest.mark.serial  # asserts rates and elapsed times: not in parallel with others

PER_MINUTE, BURST = 1200, 20


def contracts(folder: Path, count: int, start: int = 0, pdfs: int = 1) -> list[Contract]:
    files = []
    for n in range(pdfs):
        path = folder / f"policy-{n}.pdf"
        if not path.exists():
            path.write_bytes(text_pdf(f"Policy {n}", ["Same text for everyone"]))
        files.append(path)
    rows = [
        {
            "row_id": f"row-{i}",
            "pdf": str(files[i % pdfs]),
            "subject": f"Policy update {i}",
            "signer_email": f"supplier{i}@example.com",
            "signer_name": f"Supplier {i}",
        }
        for i in range(start, start + count)
    ]
    return contracts_from_list(rows)


def run(conn_id: str, rows: list[Contract], journal: Journal) -> list[dict[str, Any]]:
    return asyncio.run(send_all(conn_id, rows, journal, max_in_flight=16))


def test_contracts_sharing_a_pdf_upload_it_once(
    certyneo_emulator: CertyneoEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two PDFs for 30 rows: two uploads, and each file read (checked and hashed) once."""
    reads: list[str] = []

    def counted(source: Any) -> InspectedPdf:
        reads.append(Path(source).name)
        return inspect_pdf(source)

    monkeypatch.setattr(pipeline, "inspect_pdf", counted)
    monkeypatch.setattr(certyneo_async, "inspect_pdf", counted)
    journal_path = tmp_path / "journal.jsonl"
    results = run("certyneo_default", contracts(tmp_path, 30, pdfs=2), Journal(journal_path))
    counters = certyneo_emulator.control.counters()
    assert [r["error"] for r in results] == [None] * 30
    assert sorted(reads) == ["policy-0.pdf", "policy-1.pdf"]
    assert counters["documents"] == 2
    assert counters["requestsTotal"] == 2 + 30 + 30
    assert set(counters["sends"].values()) == {1}

    resumed = run("certyneo_default", contracts(tmp_path, 40, pdfs=2), Journal(journal_path))
    assert [r["error"] for r in resumed] == [None] * 40
    assert certyneo_emulator.control.counters()["documents"] == 2, "a resumed run uploaded again"


def test_uploads_are_not_reused_by_another_key(
    certyneo_emulator: CertyneoEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal_path = tmp_path / "journal.jsonl"
    run("certyneo_default", contracts(tmp_path, 3), Journal(journal_path))
    other_key = certyneo_emulator.control.add_key("test", "other")
    monkeypatch.setenv("AIRFLOW_CONN_CERTYNEO_OTHER", certyneo_emulator.connection_json(other_key))
    results = run("certyneo_other", contracts(tmp_path, 3, start=3), Journal(journal_path))
    assert [r["error"] for r in results] == [None] * 3
    assert certyneo_emulator.control.counters()["documents"] == 2


def while_running(action: Callable[[], None], after: float) -> threading.Thread:
    def later() -> None:
        time.sleep(after)
        action()

    thread = threading.Thread(target=later, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_redis_killed_mid_run_the_run_completes_each_sent_once_one_warning(
    certyneo_emulator: CertyneoEmulator,
    redis_server: RedisServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.WARNING)
    certyneo_emulator.control.configure(ratePerMinute=PER_MINUTE, burst=BURST)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CERTYNEO_SHARED",
        certyneo_emulator.connection_json(
            rate_limit_per_minute=PER_MINUTE, rate_limit_burst=BURST, rate_limit_redis_conn_id="redis_fleet"
        ),
    )
    killer = while_running(redis_server.kill, after=1.5)
    results = run("certyneo_shared", contracts(tmp_path, 40), Journal(tmp_path / "journal.jsonl"))
    killer.join()
    counters = certyneo_emulator.control.counters()
    assert [r["error"] for r in results] == [None] * 40
    assert len(counters["sends"]) == 40
    assert set(counters["sends"].values()) == {1}
    assert counters["requestsTotal"] > 2 * BURST, "Redis was killed after the run had ended"
    warnings = [r.getMessage() for r in caplog.records if "store is unreachable" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("Certyneo rate governor: the redis store is unreachable")
    assert "sk_test_" not in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["delete", "garbage"])
def test_state_file_damaged_mid_run_is_rebuilt_and_nothing_fails(
    certyneo_emulator: CertyneoEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    state_dir = tmp_path / "state"
    monkeypatch.setenv(STATE_DIR_ENV, str(state_dir))
    certyneo_emulator.control.configure(ratePerMinute=PER_MINUTE, burst=BURST)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CERTYNEO_PACED",
        certyneo_emulator.connection_json(rate_limit_per_minute=PER_MINUTE, rate_limit_burst=BURST),
    )

    def spoil() -> None:  # within the run: 61 requests take at least 2 s at this rate
        for _ in range(3):
            for path in state_dir.glob("*.bucket"):
                if damage == "delete":
                    path.unlink(missing_ok=True)
                else:
                    path.write_bytes(b"not a bucket \xff" * 3)
            time.sleep(0.3)

    spoiler = while_running(spoil, after=0.5)
    results = run("certyneo_paced", contracts(tmp_path, 30), Journal(tmp_path / "journal.jsonl"))
    spoiler.join()
    counters = certyneo_emulator.control.counters()
    assert [r["error"] for r in results] == [None] * 30
    assert set(counters["sends"].values()) == {1}
    assert len(counters["sends"]) == 30
    assert list(state_dir.glob("*.bucket")), "the state file was not rebuilt"
