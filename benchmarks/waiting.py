"""Waiting on 1,000 sent envelopes that complete at random, as 1,000 deferred triggers in one process.

Scaled clock: 6,000 requests/min, burst 200; poll interval 5 s; completions spread over 60 s.
Prints ``name: value`` lines:
- waiting_envelopes, waiting_poll_interval_seconds;
- waiting_requests_per_minute: API requests spent on polling while waiting (all 1,000 together);
- waiting_requests_per_poll_interval: the same per interval (a handful, not 1,000);
- waiting_delay_mean_seconds / waiting_delay_max_seconds: completion -> trigger event;
- waiting_delay_max_ratio_to_poll_interval (limit 1.0);
- watchers_memory_mib: resident memory added by the 1,000 waiting triggers;
- watchers_cpu_percent: CPU of this process while they all wait and nothing changes.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import threading
import time
from pathlib import Path

from _emulator import contract_rows, emulator

from airflow_provider_certyneo.bulk.journal import Journal
from airflow_provider_certyneo.bulk.manifest import contracts_from_list
from airflow_provider_certyneo.bulk.pipeline import send_all
from airflow_provider_certyneo.triggers.envelope import CertyneoEnvelopeTrigger

N, INTERVAL, SPREAD = 1000, 5.0, 60.0
POLL_ROUTES = ("GET /api/v1/envelopes", "GET /api/v1/envelopes/{id}")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def polling_requests(counters: dict[str, object]) -> int:
    requests = counters["requests"]
    assert isinstance(requests, dict)
    return sum(int(requests.get(route, 0)) for route in POLL_ROUTES)


async def wait_all(conn_id: str, ids: list[str], known_as_of: str, control: object) -> None:
    events: dict[str, float] = {}

    async def one(envelope_id: str) -> None:
        trigger = CertyneoEnvelopeTrigger(
            envelope_id, conn_id, poll_interval=INTERVAL, known_as_of=known_as_of
        )
        async for event in trigger.run():
            assert event.payload["status"] == "success", event.payload
            events[envelope_id] = time.monotonic()

    memory_before = rss_mib()
    tasks = [asyncio.create_task(one(i)) for i in ids]
    await asyncio.sleep(INTERVAL * 2)
    memory_after = rss_mib()
    cpu_started, wall_started = time.process_time(), time.monotonic()
    await asyncio.sleep(INTERVAL * 2)
    cpu_percent = (time.process_time() - cpu_started) / (time.monotonic() - wall_started) * 100

    signed: dict[str, float] = {}
    schedule = sorted((random.uniform(0, SPREAD), i) for i in ids)

    def sign_all() -> None:
        start = time.monotonic()
        for at, envelope_id in schedule:
            time.sleep(max(0.0, start + at - time.monotonic()))
            control.sign(envelope_id)  # type: ignore[attr-defined]
            signed[envelope_id] = time.monotonic()

    before = polling_requests(control.counters())  # type: ignore[attr-defined]
    window_started = time.monotonic()
    signer = threading.Thread(target=sign_all)
    signer.start()
    await asyncio.gather(*tasks)
    window = time.monotonic() - window_started
    signer.join()
    spent = polling_requests(control.counters()) - before  # type: ignore[attr-defined]
    delays = [events[i] - signed[i] for i in ids]
    print(f"waiting_envelopes: {len(ids)}")
    print(f"waiting_poll_interval_seconds: {INTERVAL}")
    print(f"waiting_requests_per_minute: {spent / window * 60:.1f}")
    print(f"waiting_requests_per_poll_interval: {spent / window * INTERVAL:.2f}")
    print(f"waiting_delay_mean_seconds: {statistics.mean(delays):.2f}")
    print(f"waiting_delay_max_seconds: {max(delays):.2f}")
    print(f"waiting_delay_max_ratio_to_poll_interval: {max(delays) / INTERVAL:.2f}")
    print(f"watchers_memory_mib: {memory_after - memory_before:.1f}")
    print(f"watchers_cpu_percent: {cpu_percent:.2f}")


def main() -> None:
    work, rows = contract_rows("waiting", N)
    with emulator(per_minute=6000, burst=200) as (conn_id, control):
        control.configure(ratePerMinute=10_000_000, burst=1_000_000)
        fast = json.loads(os.environ["AIRFLOW_CONN_CERTYNEO_BENCH"])
        fast["extra"] = {"rate_limit_per_minute": 10_000_000, "rate_limit_burst": 1_000_000}
        os.environ["AIRFLOW_CONN_CERTYNEO_SETUP"] = json.dumps(fast)
        journal = Journal(work / "journal.jsonl")
        results = asyncio.run(send_all("certyneo_setup", contracts_from_list(rows), journal, 64))
        ids = [r["envelope_id"] for r in results]
        assert all(ids)
        assert len(ids) == N
        control.configure(ratePerMinute=6000, burst=200)
        assert journal.started is not None
        asyncio.run(wait_all(conn_id, ids, journal.started, control))


if __name__ == "__main__":
    main()
