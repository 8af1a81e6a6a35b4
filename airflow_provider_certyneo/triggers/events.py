"""CertyneoEnvelopeEventTrigger: an ``AssetWatcher`` trigger that turns envelopes reaching COMPLETED (or
DECLINED) into asset events, for Airflow installations Certyneo's webhooks cannot reach.

It asks only "what changed since my last look?" (the change feed, :mod:`.feed`, in Certyneo's time), one
round per poll interval for all envelopes, each request paid from the key's poll budget in its rate
governor (so two triggerers together stay within it). Delivery is at least once: the changed-since window
overlaps the last one, and an event's ``event_id`` (envelope id and ``updatedAt``) lets a consumer skip one
it has seen.

Where it resumes after a restart: on Airflow 3.3+ its cursor lives in the asset's state store (never in
its kwargs, which are its identity), so it resumes where it stopped and replays at most one overlap
(10 s) of changes, and not even those: the envelopes it delivered within that overlap are saved with it.
On 3.1 and 3.2, which have no such store, it starts ``lookback`` seconds back (an hour by
default): changes of the last hour are delivered again, older ones missed during a longer outage are not.
It reports only envelopes that *reached* the outcome since its cursor, never "is still COMPLETED", so a
condition that stays true does not schedule the DAG again and again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_certyneo.client import defaults
from airflow_provider_certyneo.client.outcomes import OUTCOMES, event_payload
from airflow_provider_certyneo.client.timestamps import instant, parse_rfc3339, rfc3339
from airflow_provider_certyneo.triggers.arguments import conn_id_arg, seconds_arg
from airflow_provider_certyneo.triggers.feed import ChangeFeed
from airflow_provider_certyneo.triggers.timing import OVERLAP

log = logging.getLogger(__name__)
CURSOR_KEY = "certyneo_cursor"


class CertyneoEnvelopeEventTrigger(BaseEventTrigger):
    """Fires one event per envelope of ``certyneo_conn_id`` that reaches ``outcome``.

    :param certyneo_conn_id: the ``certyneo`` connection (read asynchronously in the triggerer).
    :param outcome: ``completed`` (signed by everyone) or ``declined``.
    :param poll_interval: seconds between two looks at what changed.
    :param lookback: on Airflow versions without an asset state store, how far back (seconds) the first
        look after a (re)start reaches.
    """

    def __init__(
        self,
        certyneo_conn_id: str = defaults.CONN_ID,
        outcome: str = "completed",
        poll_interval: float = 60.0,
        lookback: float = 3600.0,
    ) -> None:
        super().__init__()
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        self.certyneo_conn_id = conn_id_arg(certyneo_conn_id)
        self.outcome = outcome
        self.poll_interval = seconds_arg("poll_interval", poll_interval)
        self.lookback = seconds_arg("lookback", lookback)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and kwargs: ids and numbers only (no cursor: the kwargs are the trigger's identity)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "certyneo_conn_id": self.certyneo_conn_id,
                "outcome": self.outcome,
                "poll_interval": self.poll_interval,
                "lookback": self.lookback,
            },
        )

    async def _load_cursor(self) -> tuple[datetime | None, dict[str, str]]:
        """The saved cursor and the envelopes delivered within the overlap before it (so a restart does not
        deliver them again), or nothing."""
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return None, {}
        try:
            saved = await store.aget(CURSOR_KEY)
            if not isinstance(saved, dict) or not isinstance(saved.get("cursor"), str):
                return None, {}
            delivered = saved.get("delivered")
            return parse_rfc3339(saved["cursor"], CURSOR_KEY), dict(delivered) if isinstance(
                delivered, dict
            ) else {}
        except Exception as exc:  # noqa: BLE001 - no usable store: start from the lookback instead
            log.warning("Certyneo watcher: cannot read its cursor (%s); starting from the lookback", exc)
            return None, {}

    async def _save_cursor(self, cursor: datetime, delivered: dict[str, str]) -> None:
        store = getattr(self, "asset_state_store", None)
        if store is not None:
            try:
                await store.aset(CURSOR_KEY, {"cursor": rfc3339(cursor), "delivered": delivered})
            except Exception as exc:  # noqa: BLE001 - the cursor is an optimisation; events still flow
                log.warning("Certyneo watcher: cannot save its cursor (%s)", exc)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Look for envelopes that reached the outcome, once per interval, forever."""
        from airflow_provider_certyneo.hooks.certyneo_async import CertyneoAsyncHook

        status = OUTCOMES[self.outcome]
        async with CertyneoAsyncHook(self.certyneo_conn_id) as hook:
            await hook.asettings()
            budget = hook.governor("poll", defaults.POLL_SHARE)
            cursor, delivered = await self._load_cursor()
            if cursor is None:
                cursor = datetime.fromtimestamp(time.time() - self.lookback, timezone.utc)
            feed = ChangeFeed(cursor, status)
            self.log.info(
                "Watching %s envelopes of %r changed since %s, every %.0f s",
                status,
                self.certyneo_conn_id,
                rfc3339(cursor),
                self.poll_interval,
            )
            reached: list[dict[str, Any]] = []

            def each(envelope: Any) -> None:
                updated = str(envelope.get("updatedAt"))
                if envelope.get("status") != status or delivered.get(envelope["id"]) == updated:
                    return
                delivered[envelope["id"]] = updated
                reached.append(event_payload(envelope, f"{envelope['id']}@{updated}", "watcher"))

            while True:
                reached.clear()
                complete = await feed.poll(hook, budget.apace, each)
                for payload in reached:
                    yield TriggerEvent(payload)
                if complete:
                    assert feed.cursor is not None
                    kept = still_in_overlap(delivered, feed.cursor)
                    delivered.clear()
                    delivered.update(kept)
                    await self._save_cursor(feed.cursor, delivered)
                await asyncio.sleep(self.poll_interval)


def still_in_overlap(delivered: dict[str, str], cursor: datetime) -> dict[str, str]:
    """The envelopes delivered (id → ``updatedAt``) that the next look, reaching :data:`OVERLAP` before
    ``cursor``, can list again: those are kept so that they are not delivered twice, compared as instants."""
    horizon = cursor - OVERLAP
    return {k: v for k, v in delivered.items() if (moment := instant(v)) is not None and moment >= horizon}
