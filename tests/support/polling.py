"""Waiting in tests for something to happen: one poll-until, sync and async.

``wait_until(predicate, timeout, interval, what)`` calls ``predicate`` until it returns something truthy
and returns that; after ``timeout`` seconds it raises ``AssertionError`` naming ``what`` and the last value
the predicate returned (plus ``detail()``, e.g. a process log, when given). A predicate may itself raise
(an ``assert`` that a worker is still alive): that ends the wait at once. ``await await_until(...)`` is the
same in a coroutine; its predicate may return an awaitable (``lambda: asyncio.to_thread(check)`` for a
blocking check), and it sleeps with ``asyncio.sleep`` so the event loop keeps running.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _timed_out(what: str, timeout: float, last: Any, detail: Callable[[], object] | None) -> AssertionError:
    message = f"timed out after {timeout:g} s waiting for {what}; last seen: {last!r}"
    if detail is not None:
        message += f"\n{detail()}"
    return AssertionError(message)


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.05,
    what: str = "the condition",
    *,
    detail: Callable[[], object] | None = None,
) -> T:
    """``predicate()``'s first truthy value, polled every ``interval`` seconds for up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, value, detail)
        time.sleep(interval)


async def await_until(
    predicate: Callable[[], Any],
    timeout: float,
    interval: float = 0.05,
    what: str = "the condition",
    *,
    detail: Callable[[], object] | None = None,
) -> Any:
    """As :func:`wait_until`, in a coroutine; ``predicate`` may return an awaitable, which is awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, value, detail)
        await asyncio.sleep(interval)
