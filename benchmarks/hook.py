"""The hook against raw httpx on the same emulator, and the bulk rate achieved against the floor.

Prints ``name: value`` lines:
- hook_overhead_ms_per_request: extra client time per request, hook minus raw httpx (same emulator);
- hook_time_ratio_to_httpx: the same as a ratio of total times;
- bulk_requests, bulk_floor_seconds, bulk_elapsed_seconds;
- bulk_time_ratio_to_floor: wall time of N requests from 8 threads on one key / the token-bucket floor
  max(0, N - burst) / rate (limit: 1.10);
- bulk_429s: 429 answers the server gave (limit: 0).
"""

from __future__ import annotations

import concurrent.futures
import statistics
import time

import httpx
from _emulator import KEY, emulator

from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

REQUESTS = 200
ROUNDS = 7
BULK_REQUESTS, PER_MINUTE, BURST = 1000, 6000, 200


def overhead() -> None:
    """Alternating rounds of raw httpx and hook requests (same emulator, same connection reuse); medians."""
    raw_times, hook_times = [], []
    with (
        emulator(per_minute=10_000_000, burst=1_000_000) as (conn_id, control),
        httpx.Client(
            base_url=f"{control.base_url}/api/v1", headers={"Authorization": f"Bearer {KEY}"}
        ) as raw,
        CertyneoHook(conn_id) as hook,
    ):
        for _ in range(50):
            raw.get("/keys", params={"limit": 1})
            next(hook.list_api_keys(page_size=1))
        for _ in range(ROUNDS):
            started = time.perf_counter()
            for _ in range(REQUESTS):
                raw.get("/keys", params={"limit": 1}).raise_for_status()
            raw_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            for _ in range(REQUESTS):
                next(hook.list_api_keys(page_size=1))
            hook_times.append(time.perf_counter() - started)
    raw_seconds, hook_seconds = statistics.median(raw_times), statistics.median(hook_times)
    print(f"hook_overhead_ms_per_request: {(hook_seconds - raw_seconds) / REQUESTS * 1000:.3f}")
    print(f"hook_time_ratio_to_httpx: {hook_seconds / raw_seconds:.3f}")


def bulk_rate() -> None:
    with emulator(per_minute=PER_MINUTE, burst=BURST) as (conn_id, control):
        hooks = [CertyneoHook(conn_id) for _ in range(8)]
        for hook in hooks:
            hook.get_conn()
        floor = max(0, BULK_REQUESTS - BURST) * 60 / PER_MINUTE
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: next(hooks[i % 8].list_api_keys(page_size=1)), range(BULK_REQUESTS)))
        elapsed = time.monotonic() - started
        counters = control.counters()
        for hook in hooks:
            hook.close()
    print(f"bulk_requests: {BULK_REQUESTS}")
    print(f"bulk_floor_seconds: {floor:.3f}")
    print(f"bulk_elapsed_seconds: {elapsed:.3f}")
    print(f"bulk_time_ratio_to_floor: {elapsed / floor:.3f}")
    print(f"bulk_429s: {counters['rateLimited']}")


if __name__ == "__main__":
    overhead()
    bulk_rate()
