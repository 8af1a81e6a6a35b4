"""Bulk runs on the shared governor: one upload per distinct PDF (also across a resumed run, only for the
same key), and a run that survives its rate store failing under it (Redis killed, the state file deleted
or overwritten with garbage) — every contract sent once, nothing failed."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import zlib
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


class AtSends:
    """Runs ``actions[i]`` as soon as the emulator has counted ``thresholds[i]`` sends (its own counters,
    polled), in a thread; records the sends counted just before and just after each action, so a test can
    assert the damage happened while the run was going on (after N sends and before the last)."""

    def __init__(self, emulator: CertyneoEmulator, thresholds: list[int], action: Callable[[], Any]) -> None:
        self.emulator = emulator
        self.thresholds = thresholds
        self.action = action
        self.seen: list[tuple[int, int, Any]] = []  # (sends before, sends after, what the action returned)
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _sends(self) -> int:
        return sum(self.emulator.control.counters()["sends"].values())

    def _watch(self) -> None:
        try:
            for threshold in self.thresholds:
                while (before := self._sends()) < threshold:
                    if self._stop.wait(0.01):
                        return
                returned = self.action()
                self.seen.append((before, self._sends(), returned))
        except Exception as exc:  # noqa: BLE001 - reported by join()
            self.error = exc

    def join(self) -> list[tuple[int, int, Any]]:
        self._stop.set()
        self._thread.join(timeout=10)
        if self.error is not None:
            raise self.error
        return self.seen


@pytest.mark.slow
def test_redis_killed_mid_run_the_run_completes_each_sent_once_one_warning(
    certyneo_emulator: CertyneoEmulator,
    redis_server: RedisServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis is killed once the server has counted 5 sends, with the run still far from its 40th."""
    caplog.set_level(logging.WARNING)
    certyneo_emulator.control.configure(ratePerMinute=PER_MINUTE, burst=BURST)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CERTYNEO_SHARED",
        certyneo_emulator.connection_json(
            rate_limit_per_minute=PER_MINUTE, rate_limit_burst=BURST, rate_limit_redis_conn_id="redis_fleet"
        ),
    )

    def kill() -> float:
        redis_server.kill()
        with pytest.raises(ConnectionRefusedError):  # nothing listens on its port any more
            socket.create_connection(("127.0.0.1", redis_server.port), timeout=1).close()
        return time.monotonic()

    killer = AtSends(certyneo_emulator, [5], kill)
    results = run("certyneo_shared", contracts(tmp_path, 40), Journal(tmp_path / "journal.jsonl"))
    ((before, after, killed_at),) = killer.join()
    counters = certyneo_emulator.control.counters()
    assert 5 <= before <= after < 30, f"Redis was killed after {before} sends of 40: not mid-run"
    later = [e for e in certyneo_emulator.control.requests() if e["at"] > killed_at]
    assert any(e["route"] == "POST /api/v1/envelopes/{id}/send" for e in later), "sends went on after"
    assert [r["error"] for r in results] == [None] * 40
    assert len(counters["sends"]) == 40
    assert set(counters["sends"].values()) == {1}
    warnings = [r.getMessage() for r in caplog.records if "store is unreachable" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("Certyneo rate governor: the redis store is unreachable")
    assert "sk_test_" not in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["delete", "garbage"])
def test_state_file_damaged_mid_run_is_rebuilt_and_nothing_fails(
    certyneo_emulator: CertyneoEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    damage: str,
) -> None:
    """The host's state file is deleted (or overwritten with garbage) three times, once the server has
    counted 3, 10 and 17 sends of 30: each time while the run goes on, each time the file is rebuilt as a
    valid bucket, and the host store never gives up (no fallback warning)."""
    from airflow_provider_certyneo.governor.stores import _MAGIC, _RECORD

    caplog.set_level(logging.WARNING)
    state_dir = tmp_path / "state"
    monkeypatch.setenv(STATE_DIR_ENV, str(state_dir))
    certyneo_emulator.control.configure(ratePerMinute=PER_MINUTE, burst=BURST)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CERTYNEO_PACED",
        certyneo_emulator.connection_json(rate_limit_per_minute=PER_MINUTE, rate_limit_burst=BURST),
    )

    def spoil() -> int:
        spoiled = 0
        for path in state_dir.glob("*.bucket"):
            if damage == "delete":
                path.unlink()
            else:
                path.write_bytes(b"not a bucket \xff" * 3)
            spoiled += 1
        return spoiled

    spoiler = AtSends(certyneo_emulator, [3, 10, 17], spoil)
    results = run("certyneo_paced", contracts(tmp_path, 30), Journal(tmp_path / "journal.jsonl"))
    seen = spoiler.join()
    counters = certyneo_emulator.control.counters()
    assert len(seen) == 3, f"damaged {len(seen)} times: {seen}"
    for (before, after, spoiled), threshold in zip(seen, [3, 10, 17], strict=True):
        assert threshold <= before <= after < 30, f"damaged after {before} sends of 30: not mid-run"
        assert spoiled >= 1, f"no state file to damage after {before} sends"
    assert [r["error"] for r in results] == [None] * 30
    assert set(counters["sends"].values()) == {1}
    assert len(counters["sends"]) == 30
    rebuilt = [path.read_bytes() for path in state_dir.glob("*.bucket")]
    assert rebuilt, "the state file was not rebuilt"
    for raw in rebuilt:  # the store reads and writes the first record's bytes only
        magic, _, _, checksum = _RECORD.unpack(raw[: _RECORD.size])
        assert magic == _MAGIC, f"a valid bucket was rebuilt, not {raw!r}"
        assert checksum == zlib.crc32(raw[:24]), f"a valid bucket was rebuilt, not {raw!r}"
    assert "store is unreachable" not in caplog.text, "the host store was rebuilt, not given up"
