"""Recording a verified Certyneo event as an asset event, once, from inside the API server.

The plugin already runs in the API server, which holds a metadata-database session, so it registers the
event with Airflow's asset manager — as the public ``POST /api/v2/assets/events`` route does internally —
rather than calling that route over HTTP with a token it would have to be given and to keep secret. The
same call exists on every supported version (3.1 to 3.3). Duplicates (Certyneo's retries, replays) are
found in the events already recorded on the asset within the dedupe window. The transaction starts by
writing the asset's row, which every database serialises (a row lock on PostgreSQL and MySQL, the write lock
on SQLite, where ``SELECT … FOR UPDATE`` is a no-op): two deliveries of one event, to two API-server workers
at the same moment, are checked one after the other, and a restart changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_certyneo.assets import asset_uri, envelope_of

DEDUPE_WINDOW = timedelta(days=3)


def record_asset_event(conn_id: str, outcome: str, payload: dict[str, Any]) -> str:
    """``recorded``, ``duplicate`` (this event id is already an event of the asset), or ``no_consumer`` (no
    DAG is scheduled on the asset, so Airflow does not know it)."""
    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select, update

    uri = asset_uri(conn_id, outcome)
    with create_session() as session:
        session.execute(  # claims the asset's row before anything is read
            update(AssetModel).where(AssetModel.uri == uri).values(updated_at=AssetModel.updated_at)
        )
        asset = session.scalars(
            select(AssetModel).where(AssetModel.uri == uri).order_by(AssetModel.id).limit(1)
        ).first()
        if asset is None:
            return "no_consumer"
        since = datetime.now(timezone.utc) - DEDUPE_WINDOW
        recent = session.scalars(
            select(AssetEvent.extra).where(AssetEvent.asset_id == asset.id, AssetEvent.timestamp >= since)
        )
        if any(envelope_of(extra or {}).get("event_id") == payload["event_id"] for extra in recent):
            return "duplicate"
        asset_manager.register_asset_change(asset=asset, extra={"payload": payload}, session=session)
    return "recorded"
