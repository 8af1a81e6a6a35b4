"""One key shared by a whole deployment, on a scaled clock (6,000/min, burst 200): worker processes of one
machine with default settings, and two "hosts" (process groups sharing nothing but a Redis started here
from Debian's redis-server); and what the governor costs per request in each store.

Prints ``name: value`` lines:
- fleet_processes_8_ratio_to_floor: wall time of 8 processes × 150 requests / max(0, N - burst) / rate
  (limit 1.05), and fleet_processes_8_429s (limit 0);
- fleet_hosts_2_redis_ratio_to_floor and fleet_hosts_2_redis_429s: the same from 2 hosts × 4 processes;
- governor_cost_us_per_request_{process,host,redis}: time to take a token, in microseconds.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fleet and Redis helpers of tests/support

from _emulator import KEY

from airflow_provider_certyneo.emulator.handle import EmulatorControl, connection_json
from airflow_provider_certyneo.emulator.server import emulator_process
from airflow_provider_certyneo.governor.governor import Governor
from airflow_provider_certyneo.governor.redis_store import RedisStore
from airflow_provider_certyneo.governor.rule import Rule
from airflow_provider_certyneo.governor.stores import HostStore, ProcessStore
from tests.support.fleet import run_fleet
from tests.support.redis import RedisServer

PER_MINUTE, BURST, EACH = 6000, 200, 150
COST_ROUNDS = 5000


def fleet(name: str, hosts: int, processes: int, env: dict[str, str], **extra: object) -> None:
    with emulator_process(KEY, PER_MINUTE, BURST) as base_url:
        conn = connection_json(
            base_url, KEY, rate_limit_per_minute=PER_MINUTE, rate_limit_burst=BURST, **extra
        )
        result = run_fleet(conn, hosts, processes, EACH, env)
        control = EmulatorControl(base_url)
        counters = control.counters()
        control.close()
    floor = max(0, result.requests - BURST) * 60 / PER_MINUTE
    print(f"{name}_requests: {counters['requestsTotal']}")
    print(f"{name}_floor_seconds: {floor:.2f}")
    print(f"{name}_elapsed_seconds: {result.elapsed:.2f}")
    print(f"{name}_ratio_to_floor: {result.elapsed / floor:.3f}")
    print(f"{name}_429s: {counters['rateLimited']}")


def cost(name: str, governor: Governor) -> None:
    for _ in range(200):
        governor.reserve()
    started = time.perf_counter()
    for _ in range(COST_ROUNDS):
        governor.reserve()
    print(f"governor_cost_us_per_request_{name}: {(time.perf_counter() - started) / COST_ROUNDS * 1e6:.1f}")


def main() -> None:
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="certyneo-bench-"))
    fleet("fleet_processes_8", hosts=1, processes=8, env={})
    with RedisServer() as redis:
        redis_env = {"AIRFLOW_CONN_REDIS_BENCH": redis.conn_json}
        fleet(
            "fleet_hosts_2_redis", hosts=2, processes=4, env=redis_env, rate_limit_redis_conn_id="redis_bench"
        )
        os.environ.update(redis_env)
        unlimited = Rule(1e12, 10**12)
        cost("process", Governor([ProcessStore(unlimited)]))
        cost("host", Governor([HostStore(unlimited, "cost", Path(tempfile.mkdtemp()))]))
        cost("redis", Governor([RedisStore(unlimited, "cost", "redis_bench")]))


if __name__ == "__main__":
    main()
