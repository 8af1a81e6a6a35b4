"""The one change feed: "which envelopes changed since my last look?", asked of the list endpoint.

Both the shared poller of the waiting triggers (:mod:`.watcher`) and the asset watcher (:mod:`.events`)
ask it the same way, so the rules are here once:

* the cursor is in Certyneo's time (the server's clock as read from its ``Date`` headers), never this
  machine's: a worker running ahead of Certyneo would otherwise ask for changes from the future;
* each look reaches :data:`~.timing.OVERLAP` further back than the cursor (changes committed while the last
  list was in flight, and the clock estimate's error): delivery is at least once;
* every request — each page, not each round — is paid from the poll budget before it is sent, so a round
  that pages through thousands of changes (the first of the month) stays within the budget's share;
* a failure that a later look can get past (Certyneo unavailable, a 5xx past the retry budget) leaves the
  cursor where it was and the round is simply done again; any other is raised to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from airflow_provider_certyneo.client.types import Envelope
from airflow_provider_certyneo.exceptions import CertyneoError
from airflow_provider_certyneo.triggers.timing import OVERLAP

if TYPE_CHECKING:
    from airflow_provider_certyneo.hooks.certyneo_async import CertyneoAsyncHook

log = logging.getLogger(__name__)


class ChangeFeed:
    """The envelopes changed since :attr:`cursor`, one round at a time. It outlives the HTTP clients that
    poll it: a poller restarted after an outage goes on from the same cursor.

    :param cursor: Certyneo's time from which to look (None: set it before the first round).
    :param status: only envelopes of this status (None: all).
    """

    def __init__(self, cursor: datetime | None = None, status: str | None = None) -> None:
        self.cursor = cursor
        self.status = status

    def rewind(self, to: datetime) -> None:
        """Look from ``to`` at the latest (a newcomer knew its envelopes as of then)."""
        self.cursor = to if self.cursor is None else min(self.cursor, to)

    async def poll(
        self,
        hook: CertyneoAsyncHook,
        pace: Callable[[], Awaitable[None]],
        each: Callable[[Envelope], None],
    ) -> bool:
        """One round through ``hook``, awaiting ``pace`` (the key's poll budget) before each request: ``each``
        is called with every envelope changed since the cursor (less the overlap) as its page arrives (a
        round of thousands of changes never holds them all at once). The cursor moves to the round's start
        once the round is complete and the server's clock is known. False when Certyneo was unavailable
        (logged): the next round starts from the same cursor. Raises a ``CertyneoError`` that no retry can
        fix."""
        if self.cursor is None:
            raise ValueError("set the change feed's cursor before its first round")
        started = hook.server_clock.now()
        clock_known = hook.server_clock.observed
        changes = hook.list_envelopes(status=self.status, updated_since=self.cursor - OVERLAP, pace=pace)
        try:
            async for envelope in changes:
                each(envelope)
        except CertyneoError as exc:
            if not exc.retryable:
                raise
            log.warning("Certyneo unavailable listing changes, will try again: %s", exc)
            return False
        if clock_known:
            self.cursor = started
        return True
