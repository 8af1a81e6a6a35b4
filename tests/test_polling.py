"""tests/support/polling.py: the one poll-until of the tests."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from tests.support.polling import await_until, wait_until


def test_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter) >= 3 and "ready", timeout=5, interval=0.001) == "ready"


def test_times_out_naming_what_and_the_last_value() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"waiting for the answer; last seen: \[\]\nthe log"):
        wait_until(list, timeout=0.2, interval=0.01, what="the answer", detail=lambda: "the log")
    assert 0.2 <= time.monotonic() - started < 2


def test_a_predicate_that_raises_ends_the_wait() -> None:
    def broken() -> bool:
        raise AssertionError("the worker died")

    with pytest.raises(AssertionError, match="the worker died"):
        wait_until(broken, timeout=60)


@pytest.mark.asyncio
async def test_async_awaits_awaitables_and_times_out() -> None:
    counter = itertools.count()

    async def check() -> int:
        return next(counter) >= 2

    assert await await_until(check, timeout=5, interval=0.001) is True
    assert await await_until(lambda: asyncio.to_thread(lambda: 7), timeout=1) == 7
    with pytest.raises(AssertionError, match="waiting for nothing; last seen: 0"):
        await await_until(lambda: 0, timeout=0.1, interval=0.01, what="nothing")
