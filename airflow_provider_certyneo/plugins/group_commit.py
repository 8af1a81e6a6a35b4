"""Group commit: the deliveries that arrive together in one API-server worker are recorded in one
transaction, not one transaction each.

A webhook delivery's own work is small; most of its cost is the database round trips around it (taking a
connection from the pool and pinging it, beginning, committing) and, in an async server, the hop to a
thread that may block. Deliveries wait in the event loop, each on a future; whenever fewer than ``leaders``
batches are being recorded, the waiting ones (up to ``max_batch``) go to a worker thread as one batch, and
each future gets its delivery's answer when the batch is done. Nobody waits for a timer: a lone delivery is
recorded at once, and batches form only under load, as large as the load makes them. One thread hop per
batch, not per delivery; the threads are ``leaders`` of the group's own, started on first use.

At most ``leaders`` batches are recorded at a time in a process, so that the database's round trips of one
overlap the Python work of another. One instance serves one event loop (an API-server worker has one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Runs ``record(items) -> results`` (one result per item, in order; an exception as an item's result is
    raised in the coroutine that submitted that item) in a worker thread, over the items submitted
    together."""

    def __init__(
        self,
        record: Callable[[Sequence[Item]], Sequence[Result | Exception]],
        max_batch: int = 64,
        leaders: int = 2,
    ) -> None:
        self._record = record
        self.max_batch = max_batch
        self.leaders = leaders
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._recording: set[asyncio.Task[None]] = set()
        self._threads: ThreadPoolExecutor | None = None
        self.batch_sizes: list[int] = []  # the last batches' sizes, newest last (for tests and benchmarks)

    async def submit(self, item: Item) -> Result:
        """The result of recording ``item``, with whatever else was submitted meanwhile."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._start_batches()
        return await future

    def waiting(self) -> int:
        return len(self._queue)

    def _start_batches(self) -> None:
        while len(self._recording) < self.leaders and self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._recording.add(task)  # held, and counted, until its batch is answered

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.leaders, thread_name_prefix="certyneo-group-commit")
        try:
            items = [item for item, _ in batch]
            results = await asyncio.get_running_loop().run_in_executor(self._threads, self._record, items)
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for {len(batch)} items")
        except BaseException as exc:  # noqa: BLE001 - each waiting coroutine raises it as its own
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # its request went away (the client hung up): recorded all the same
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            self.batch_sizes = [*self.batch_sizes[-999:], len(batch)]
            self._recording.discard(asyncio.current_task())
            self._start_batches()
