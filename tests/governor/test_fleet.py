"""One key, many processes, several hosts: the pace holds for the whole deployment (Certyneo counts per key,
whatever machine sends). Real worker processes, real HTTP, a real redis-server; counted by the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_certyneo.emulator.handle import EmulatorControl, connection_json
from airflow_provider_certyneo.emulator.server import emulator_process
from tests.support.fleet import run_fleet
from tests.support.redis import RedisServer

pytestmark = pytest.mark.serial  # asserts rates and elapsed times: not in parallel with others

PER_MINUTE, BURST = 3000, 20
KEY = "sk_test_" + "fleet" * 6


@dataclass
class Service:
    """The emulator in its own process, as Certyneo is: a pause of this test process (a garbage collection
    over Airflow's heap) cannot hold back its bucket's refill."""

    base_url: str
    control: EmulatorControl

    def connection(self, **extra: Any) -> str:
        return connection_json(
            self.base_url, KEY, rate_limit_per_minute=PER_MINUTE, rate_limit_burst=BURST, **extra
        )


@pytest.fixture
def service() -> Iterator[Service]:
    with emulator_process(KEY, PER_MINUTE, BURST) as base_url:
        control = EmulatorControl(base_url)
        try:
            yield Service(base_url, control)
        finally:
            control.close()


@pytest.mark.slow
def test_eight_processes_on_one_key_draw_no_429(service: Service) -> None:
    """Default settings (the connection names the key's limits and nothing else): the processes of one
    machine share one bucket."""
    result = run_fleet(service.connection(), hosts=1, processes_per_host=8, requests_each=30)
    counters = service.control.counters()
    assert counters["requestsTotal"] == result.requests == 240
    assert counters["rateLimited"] == 0
    assert {r["store"] for r in result.per_process} == {"host"}
    floor = (result.requests - BURST) * 60 / PER_MINUTE
    print(f"8 processes: {result.elapsed:.2f} s for a floor of {floor:.2f} s")
    assert result.elapsed >= floor * 0.95


@pytest.mark.slow
def test_processes_pacing_alone_do_draw_429s(service: Service) -> None:
    """The same fleet with each process pacing alone (``rate_limit_store: process``, the old behaviour)
    overruns the key: this is what the shared store prevents, and shows the test above can fail."""
    conn = service.connection(rate_limit_store="process", backoff_base=0.01)
    run_fleet(conn, hosts=1, processes_per_host=3, requests_each=15)
    assert service.control.counters()["rateLimited"] > 0


def floor_seconds(requests: int) -> float:
    """The token bucket's floor for ``requests`` on the key: all but the burst at the sustained rate."""
    return (requests - BURST) * 60 / PER_MINUTE


@pytest.mark.slow
def test_two_hosts_on_one_redis_draw_no_429(service: Service, redis_server: RedisServer) -> None:
    """Two groups of two processes that share nothing but Redis (each its own state folder): no 429, and no
    faster than the key's floor (they did share one bucket, not each run at the key's rate)."""
    conn = service.connection(rate_limit_redis_conn_id="redis_fleet")
    result = run_fleet(conn, hosts=2, processes_per_host=2, requests_each=40)
    counters = service.control.counters()
    assert counters["requestsTotal"] == result.requests
    assert counters["rateLimited"] == 0
    assert {r["store"] for r in result.per_process} == {"redis"}
    floor = floor_seconds(result.requests)
    print(f"2 hosts on Redis: {result.elapsed:.2f} s for a floor of {floor:.2f} s")
    assert result.elapsed >= floor * 0.95, f"{result.elapsed:.2f} s for a floor of {floor:.2f} s"


@pytest.mark.slow
def test_two_hosts_without_redis_do_draw_429s(service: Service) -> None:
    """The failing control of the test above: the same two hosts (own state folders) pacing with their
    host store only, no Redis. Each runs at the key's rate, together twice it: the server refuses."""
    conn = service.connection(backoff_base=0.01)
    result = run_fleet(conn, hosts=2, processes_per_host=2, requests_each=40)
    assert {r["store"] for r in result.per_process} == {"host"}
    assert service.control.counters()["rateLimited"] > 0
