"""Signed and declined contracts as Airflow assets: ``certyneo://{conn_id}/envelopes/completed`` and
``…/declined``. Certyneo's webhooks (the provider's plugin) or a watcher in the triggerer turn each envelope
that reaches COMPLETED or DECLINED into an asset event, whose ``extra`` holds the same payload either way:
:func:`envelope_of` reads it back in the consuming DAG."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_certyneo.client import defaults
from airflow_provider_certyneo.client.outcomes import OUTCOMES

if TYPE_CHECKING:
    from airflow.sdk import Asset


def asset_uri(conn_id: str = defaults.CONN_ID, outcome: str = "completed") -> str:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    return f"certyneo://{conn_id}/envelopes/{outcome}"


def contracts_asset(
    conn_id: str = defaults.CONN_ID,
    outcome: str = "completed",
    *,
    watch: bool = False,
    poll_interval: float = 60,
) -> Asset:
    """The asset of ``conn_id``'s envelopes reaching ``outcome``. With ``watch=True`` a watcher in the
    triggerer asks Certyneo what changed every ``poll_interval`` seconds (for Airflow behind a firewall);
    without, Certyneo's webhooks feed it through the provider's plugin."""
    from airflow.sdk import Asset, AssetWatcher

    from airflow_provider_certyneo.triggers.events import CertyneoEnvelopeEventTrigger

    uri = asset_uri(conn_id, outcome)
    watchers = []
    if watch:
        trigger = CertyneoEnvelopeEventTrigger(conn_id, outcome, poll_interval=poll_interval)
        watchers.append(AssetWatcher(name=f"certyneo_{conn_id}_{outcome}", trigger=trigger))
    return Asset(uri, watchers=watchers)


def envelope_of(extra: Mapping[str, Any]) -> dict[str, Any]:
    """The payload of an asset event, from either source (a watcher's event nests it under ``payload``)."""
    payload = extra.get("payload", extra)
    return dict(payload) if isinstance(payload, Mapping) else {}
