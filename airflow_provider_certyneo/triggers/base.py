"""The base of the triggers that wait on envelopes: what every wait shares, written once.

It owns the wait arguments (checked by :class:`~.arguments.WaitArguments` when the trigger is made, so a
bad value fails at ``defer()`` time in the worker), :meth:`serialize` (ids and numbers only, never a key),
the hold before firing (:mod:`.timing`), turning an unexpected failure into an ``error`` event that says
what to fix, and running the same trigger in the task's own process for waits that do not defer.
A subclass says what it waits on (:meth:`subject`) and how the wait ends (:meth:`outcome`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_certyneo.exceptions import CertyneoWaitError
from airflow_provider_certyneo.triggers.arguments import WaitArguments
from airflow_provider_certyneo.triggers.failures import explain
from airflow_provider_certyneo.triggers.results import EnvelopeResult, EnvelopeSetResult
from airflow_provider_certyneo.triggers.timing import hold_until

Result = TypeVar("Result", EnvelopeResult, EnvelopeSetResult)


class CertyneoWaitTrigger(BaseTrigger, Generic[Result]):
    """Waits on the shared poller of its connection until one result ends the wait.

    :param wait: the checked waiting arguments (connection, poll interval, deadline, poll share, when the
        caller last saw the envelopes waiting, and the hold).
    """

    def __init__(self, wait: WaitArguments) -> None:
        super().__init__()
        self.wait = wait

    @property
    def certyneo_conn_id(self) -> str:
        """The ``certyneo`` connection, looked up asynchronously in the triggerer."""
        return self.wait.certyneo_conn_id

    @property
    def poll_interval(self) -> float:
        """Seconds between two looks for changes."""
        return self.wait.poll_interval

    @property
    def end_time(self) -> float | None:
        """Epoch seconds after which the wait ends with ``timeout`` (None: no deadline)."""
        return self.wait.end_time

    @property
    def poll_share(self) -> float:
        """The share of the key's rate limit that polling may spend."""
        return self.wait.poll_share

    @property
    def known_as_of(self) -> str | None:
        """The ``updatedAt`` at which the caller last saw the envelopes waiting (None: read them first)."""
        return self.wait.known_as_of

    @property
    def not_before(self) -> float | None:
        """Epoch seconds before which no event is fired."""
        return self.wait.not_before

    def subject(self) -> dict[str, Any]:
        """What is waited on, as trigger kwargs (the ids, the target statuses)."""
        raise NotImplementedError

    async def outcome(self) -> Result:
        """The one result that ends this wait."""
        raise NotImplementedError

    def error(self, message: str) -> Result:
        """The result of a wait that cannot go on, saying why."""
        raise NotImplementedError

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and kwargs: ids and numbers only, never a key."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {**self.subject(), **self.wait.serialize()},
        )

    def holding_until(self, not_before: float | None) -> CertyneoWaitTrigger[Result]:
        """The same trigger, its event held back until ``not_before`` (epoch seconds)."""
        _, kwargs = self.serialize()
        return type(self)(**{**kwargs, "not_before": not_before})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait until the outcome, hold it until ``not_before``, then fire it: exactly one event."""
        try:
            result = await self.outcome()
        except Exception as exc:
            self.log.exception("waiting on Certyneo failed")
            result = self.error(explain(exc, self.certyneo_conn_id))
        await hold_until(self.not_before, self.end_time)
        yield TriggerEvent(result.payload())

    def run_in_worker(self) -> dict[str, Any]:
        """Run this trigger in the task's own process, for waits that do not defer: one way to wait, the
        same code and the same events as in the triggerer."""

        async def first_event() -> dict[str, Any]:
            async for event in self.run():
                payload: dict[str, Any] = event.payload
                return payload
            raise CertyneoWaitError("the wait ended without an outcome")

        return asyncio.run(first_event())
