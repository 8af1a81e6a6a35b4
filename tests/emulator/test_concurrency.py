"""Many threads creating and sending envelopes on one key: no update lost, exactly the allowed 2xx."""

from __future__ import annotations

import concurrent.futures
import math
import threading
import time
from typing import Any

import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from tests.emulator.conftest import client_for

pytestmark = pytest.mark.serial  # asserts rates and elapsed times: not in parallel with others


def test_threads_lose_no_update(certyneo_emulator: CertyneoEmulator, upload: Any) -> None:
    document_id = upload()["id"]
    per_second, burst = 100.0, 60
    certyneo_emulator.control.configure(ratePerMinute=per_second * 60, burst=burst)
    lock = threading.Lock()
    created: list[str] = []
    sent: list[str] = []
    successes = 0
    times: dict[str, float] = {}
    ready = threading.Barrier(8, action=lambda: times.update(start=time.monotonic()))

    def worker(index: int) -> None:
        nonlocal successes
        with client_for(certyneo_emulator, certyneo_emulator.key) as client:
            ready.wait()
            for n in range(15):
                body = {
                    "subject": f"T{index}-{n}",
                    "documentIds": [document_id],
                    "recipients": [{"email": f"t{index}n{n}@example.com", "name": "T"}],
                }
                while (response := client.post("/envelopes", json=body)).status_code == 429:
                    time.sleep(0.01)
                assert response.status_code == 201, response.text
                envelope_id = response.json()["id"]
                while (response := client.post(f"/envelopes/{envelope_id}/send")).status_code == 429:
                    time.sleep(0.01)
                assert response.status_code == 200, response.text
                with lock:
                    created.append(envelope_id)
                    sent.append(envelope_id)
                    successes += 2

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(worker, i) for i in range(8)]:
            future.result()
    elapsed = time.monotonic() - times["start"]

    counters = certyneo_emulator.control.counters()
    assert len(set(created)) == 120
    assert counters["envelopes"] == 120
    assert counters["sends"] == {envelope_id: 1 for envelope_id in sent}
    assert successes <= math.ceil(burst + per_second * elapsed) + 1
    total = counters["requestsTotal"] - 1
    assert total - counters["rateLimited"] == successes
    certyneo_emulator.control.configure(ratePerMinute=1_000_000, burst=10_000)
    with client_for(certyneo_emulator, certyneo_emulator.key) as client:
        statuses = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 100, "status": "SENT"}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/envelopes", params=params).json()
            statuses += [e["status"] for e in page["data"]]
            if not (cursor := page["nextCursor"]):
                break
    assert statuses == ["SENT"] * 120
