"""The pacing rule and its stores: the file shared by a machine's processes, and the Redis script, which
must give the same answers as the Python rule."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path

import pytest

from airflow_provider_certyneo.governor import governor as governor_module
from airflow_provider_certyneo.governor.governor import Governor, governor_for
from airflow_provider_certyneo.governor.redis_store import RedisStore
from airflow_provider_certyneo.governor.rule import Drain, Rule, State, Take, apply
from airflow_provider_certyneo.governor.stores import HostStore, ProcessStore
from tests.support.redis import RedisServer

KEY = "sk_test_" + "governor" * 4


def test_rule_keeps_a_second_of_the_rate_as_margin_and_drains_for_retry_after() -> None:
    rule = Rule(100, 200)
    assert rule.capacity == 198, "1 s of 100/min, rounded up: 2 tokens"
    assert Rule(6000, 200).capacity == 100
    state, wait = apply(rule, None, 0.0, Take())
    assert (state.tokens, wait) == (197, 0)
    state, _ = apply(rule, state, 0.0, Drain(6.0))
    _, wait = apply(rule, state, 0.0, Take())
    assert wait == pytest.approx(6.0)
    assert rule.share(0.5) == Rule(50, 100)


def test_a_state_from_the_future_is_rebuilt_empty() -> None:
    rule = Rule(60, 10)
    state, wait = apply(rule, State(5.0, 1000.0), 10.0, Take())
    assert state.updated == 10.0
    assert wait == pytest.approx(1.0)


@pytest.mark.serial
def test_two_stores_on_one_file_share_the_bucket(tmp_path: Path) -> None:
    """Two HostStores on one file act as one bucket (as two processes do): the second sees what the first
    took."""
    first, second = HostStore(Rule(60, 6), "k", tmp_path), HostStore(Rule(60, 6), "k", tmp_path)
    started = time.monotonic()
    waits = [store.apply(Take()) for store in (first, second) * 4]
    first.apply(Drain(10.0))
    waits.append(second.apply(Take()))
    passed = time.monotonic() - started  # tokens that came back meanwhile shorten the waits, by no more
    assert waits[:5] == [0.0] * 5
    for wait, expected in zip(waits[5:], [1.0, 2.0, 3.0, 10.0], strict=True):
        assert wait is not None
        assert expected - passed - 1e-6 <= wait <= expected + 1e-6, (waits, passed)


def test_garbage_or_a_deleted_file_is_rebuilt_without_an_error(tmp_path: Path) -> None:
    store, other = HostStore(Rule(6000, 200), "k", tmp_path), HostStore(Rule(6000, 200), "k", tmp_path)
    assert store.apply(Take()) == 0.0
    store.path.write_bytes(b"\x00garbage that is no bucket state at all")
    assert store.apply(Take()) == pytest.approx(0.01, abs=0.005)
    assert store.rebuilt == 1
    store.path.unlink()
    assert other.apply(Take()) is not None
    assert store.path.exists()
    store.path.write_bytes(b"")
    assert store.apply(Take()) is not None


def test_a_busy_lock_never_blocks_the_async_caller(tmp_path: Path) -> None:
    import fcntl
    import os

    store = HostStore(Rule(60, 6), "k", tmp_path)
    store.apply(Take())
    fd = os.open(store.path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert store.apply(Take(), blocking=False) is None
    finally:
        os.close(fd)
    assert store.apply(Take(), blocking=False) == 0.0


def test_the_redis_script_is_the_python_rule(redis_server: RedisServer) -> None:
    """Random takes and drains through the Lua script and through ``rule.apply`` on the same sequence give
    the same waits: the script reads Redis's clock, and the rule is given the moment the script saved."""
    rng = random.Random(7)
    rule = Rule(600, 20)
    store = RedisStore(rule, "agree", "redis_fleet")
    client = store.connect().registered_client
    state: State | None = None
    for _ in range(200):
        op = Drain(rng.uniform(0, 2)) if rng.random() < 0.05 else Take()
        wait = store.apply(op)
        assert wait is not None
        now = float(client.hget(store.key, "updated"))
        state, expected = apply(rule, state, now, op)
        assert wait == pytest.approx(expected, abs=1e-6)
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0, 0.05))


@pytest.fixture
def quick_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(governor_module, "RETRY_SHARED_AFTER", 0.2)


@pytest.mark.usefixtures("quick_retry")
def test_redis_down_falls_back_to_the_host_warns_once_and_returns(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    governor = governor_for(KEY, Rule(6000, 200), "redis", "redis_fleet")
    assert [s.name for s in governor.stores] == ["redis", "host", "process"]
    governor.reserve()
    assert governor.store.name == "redis"
    redis_server.kill()
    for _ in range(20):
        governor.reserve()
        asyncio.run(governor.areserve())
    assert governor.store.name == "host"
    unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1, [r.getMessage() for r in caplog.records]
    assert "redis store is unreachable" in unreachable[0].getMessage()
    redis_server.start()
    time.sleep(0.3)
    governor.reserve()
    assert governor.store.name == "redis"
    assert any("is back" in r.getMessage() for r in caplog.records)


def test_an_unwritable_state_folder_falls_back_to_the_process(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    governor = Governor([HostStore(Rule(60, 6), "k", blocker), ProcessStore(Rule(60, 6))])
    assert governor.reserve() == 0.0
    assert governor.store.name == "process"


@pytest.mark.serial
def test_governor_cost_is_microseconds(tmp_path: Path) -> None:
    """Not a timing promise (the benchmark measures it); a guard against a lock or a syscall per request
    growing into milliseconds."""
    store = HostStore(Rule(1e9, 10**9), "cost", tmp_path)
    started = time.perf_counter()
    for _ in range(2000):
        store.apply(Take())
    assert (time.perf_counter() - started) / 2000 < 0.001
