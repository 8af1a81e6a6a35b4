"""A month of webhook history put straight into a metadata database: asset events on the completed asset and
their claims, as the receiver would have left them, in two bulk statements (what 20,000 deliveries leave,
without making 20,000 deliveries)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

URI = "certyneo://certyneo_default/envelopes/completed"


def add_history(session: Session, count: int, prefix: str = "evt_history_") -> list[str]:
    """``count`` recorded deliveries spread over the last two days (inside the dedupe window); returns their
    event ids."""
    from airflow.models.asset import AssetEvent, AssetModel

    from airflow_provider_certyneo.plugins.claims import CLAIMS

    asset_id = session.scalar(select(AssetModel.id).where(AssetModel.uri == URI).order_by(AssetModel.id))
    assert asset_id is not None, "no DAG is scheduled on the completed asset"
    now = datetime.now(timezone.utc)
    ids = [f"{prefix}{i:06d}" for i in range(count)]
    events: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    for i, event_id in enumerate(ids):
        when = now - timedelta(seconds=2 * 86400 * (count - i) / count)
        payload = {"envelope_id": f"env_h{i}", "event_id": event_id, "status": "COMPLETED", "recipients": []}
        events.append({"asset_id": asset_id, "extra": {"payload": payload}, "timestamp": when})
        claims.append({"asset_uri": URI, "event_id": event_id, "received_at": when})
    if ids:  # an empty list would insert one row of defaults
        session.execute(insert(AssetEvent.__table__), events)
        session.execute(insert(CLAIMS), claims)
    return ids
