"""One key, many processes, several hosts: the pace holds for the whole deployment (Certyneo counts per key,
whatever machine sends). Real worker processes, real HTTP, a real redis-server; counted by the emulator."""

from __future__ import annotations

from typing import Any

import pytest
from _fleet import RedisServer, run_fleet

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator

PER_MINUTE, BURST = 3000, 20


def fleet_connection(emulator: CertyneoEmulator, **extra: Any) -> str:
    emulator.control.configure(ratePerMinute=PER_MINUTE, burst=BURST)
    return emulator.connection_json(rate_limit_per_minute=PER_MINUTE, rate_limit_burst=BURST, **extra)


@pytest.mark.slow
def test_eight_processes_on_one_key_draw_no_429(certyneo_emulator: CertyneoEmulator) -> None:
    """Default settings (the connection names the key's limits and nothing else): the processes of one
    machine share one bucket."""
    result = run_fleet(fleet_connection(certyneo_emulator), hosts=1, processes_per_host=8, requests_each=30)
    counters = certyneo_emulator.control.counters()
    assert counters["requestsTotal"] == result.requests == 240
    assert counters["rateLimited"] == 0
    assert {r["store"] for r in result.per_process} == {"host"}
    floor = (result.requests - BURST) * 60 / PER_MINUTE
    print(f"8 processes: {result.elapsed:.2f} s for a floor of {floor:.2f} s")
    assert result.elapsed >= floor * 0.95


@pytest.mark.slow
def test_processes_pacing_alone_do_draw_429s(certyneo_emulator: CertyneoEmulator) -> None:
    """The same fleet with each process pacing alone (``rate_limit_store: process``, the old behaviour)
    overruns the key: this is what the shared store prevents, and shows the test above can fail."""
    conn = fleet_connection(certyneo_emulator, rate_limit_store="process", backoff_base=0.01)
    run_fleet(conn, hosts=1, processes_per_host=3, requests_each=15)
    assert certyneo_emulator.control.counters()["rateLimited"] > 0


@pytest.mark.slow
def test_two_hosts_on_one_redis_draw_no_429(
    certyneo_emulator: CertyneoEmulator, redis_server: RedisServer
) -> None:
    """Two groups of two processes that share nothing but Redis (each its own state folder)."""
    conn = fleet_connection(certyneo_emulator, rate_limit_redis_conn_id="redis_fleet")
    result = run_fleet(conn, hosts=2, processes_per_host=2, requests_each=40)
    counters = certyneo_emulator.control.counters()
    assert counters["requestsTotal"] == result.requests
    assert counters["rateLimited"] == 0
    assert {r["store"] for r in result.per_process} == {"redis"}
