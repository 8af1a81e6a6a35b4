"""Group commit: the deliveries that arrive together in one API-server worker are recorded in one
transaction, not one transaction each.

A webhook delivery's own work is small; most of its cost is the database round trips around it (taking a
connection from the pool and pinging it, beginning, committing). Deliveries that arrive while others are
being recorded wait in a queue; when a recording ends, one of the waiting threads (the *leader*) takes up to
``max_batch`` of them and records them all at once; the others wait for its answer. Nobody waits for a timer:
a lone delivery is recorded at once, exactly as before, and batches form only under load, as large as the
load makes them. No thread of its own, so nothing to start or stop with the API server.

At most ``leaders`` batches are recorded at a time in a process, so that the database's round trips of one
overlap the Python work of another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Waiting(Generic[Item, Result]):
    item: Item
    done: bool = False
    result: Result | None = None
    error: BaseException | None = None


class GroupCommit(Generic[Item, Result]):
    """Runs ``record(items) -> results`` (one result per item, in order; an exception as an item's result is
    raised in the thread that submitted that item) over the items submitted together."""

    def __init__(
        self,
        record: Callable[[Sequence[Item]], Sequence[Result | Exception]],
        max_batch: int = 64,
        leaders: int = 2,
    ) -> None:
        self._record = record
        self.max_batch = max_batch
        self.leaders = leaders
        self._lock = threading.Condition()
        self._queue: list[_Waiting[Item, Result]] = []
        self._recording = 0
        self.batch_sizes: list[int] = []  # the last batches' sizes, newest last (for tests and benchmarks)

    def submit(self, item: Item) -> Result:
        """The result of recording ``item``, with whatever else was submitted meanwhile (blocking)."""
        mine: _Waiting[Item, Result] = _Waiting(item)
        with self._lock:
            self._queue.append(mine)
            while not mine.done:
                if self._recording < self.leaders and self._queue:
                    batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                    self._recording += 1
                    self._lock.release()
                    try:
                        self._run(batch)
                    finally:
                        self._lock.acquire()
                        self._recording -= 1
                        self.batch_sizes = [*self.batch_sizes[-999:], len(batch)]
                        self._lock.notify_all()
                else:
                    self._lock.wait()
        if mine.error is not None:
            raise mine.error
        return mine.result  # type: ignore[return-value]  # set with done

    def _run(self, batch: list[_Waiting[Item, Result]]) -> None:
        try:
            results = self._record([waiting.item for waiting in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for {len(batch)} items")
        except BaseException as exc:  # noqa: BLE001 - each waiting thread raises it as its own
            for waiting in batch:
                waiting.error, waiting.done = exc, True
        else:
            for waiting, result in zip(batch, results, strict=True):
                if isinstance(result, Exception):
                    waiting.error, waiting.done = result, True
                else:
                    waiting.result, waiting.done = result, True
