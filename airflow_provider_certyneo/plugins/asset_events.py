"""Registering a recorded Certyneo event as an asset event, from inside the API server.

The plugin already runs in the API server, which holds a metadata-database session, so it registers the
event with Airflow's asset manager — as the public ``POST /api/v2/assets/events`` route does internally —
rather than calling that route over HTTP with a token it would have to be given and to keep secret. The
same call exists on every supported version (3.1 to 3.3), and a deployment's own asset manager
(``[core] asset_manager_class``) and listeners (OpenLineage's among them) see each event as they would any
other.

Only the drainer (:mod:`.drainer`) registers events: a delivery is recorded in the inbox
(:mod:`.inbox`), answered, and registered a moment later, in the transaction that deletes its inbox row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

_names: dict[str, str] = {}  # asset URI -> the name Airflow knows it by (Asset(uri) is named by its URI)


@dataclass(frozen=True)
class AssetUniqueKey:
    """What the asset manager looks an asset up by (its own class differs between Airflow versions)."""

    name: str
    uri: str


def asset_name(session: Session, uri: str) -> str | None:
    """The name of the asset with ``uri`` (the oldest, if several share it), or None: Airflow does not know
    it, since no DAG is scheduled on it. Cached per process: the asset manager checks it exists anyway."""
    from airflow.models.asset import AssetModel
    from sqlalchemy import select

    if uri not in _names:
        name = session.scalar(
            select(AssetModel.name).where(AssetModel.uri == uri).order_by(AssetModel.id).limit(1)
        )
        if name is None:
            return None
        _names[uri] = name
    return _names[uri]


def register_event(session: Session, uri: str, payload: dict[str, Any]) -> int | None:
    """Registers one asset event on ``uri`` carrying ``payload``, in ``session``'s transaction; its id, or
    None when Airflow no longer knows the asset (the last DAG scheduled on it went since the delivery was
    recorded)."""
    from airflow.assets.manager import asset_manager

    name = asset_name(session, uri)
    event = name is not None and asset_manager.register_asset_change(
        asset=AssetUniqueKey(name=name, uri=uri),  # type: ignore[arg-type]  # read: .name and .uri
        extra={"payload": payload},
        session=session,
    )
    if not event:
        _names.pop(uri, None)  # looked up afresh next time
        return None
    return int(event.id)
