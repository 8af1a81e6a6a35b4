"""The SQL one webhook delivery runs, caught with SQLAlchemy's ``before_cursor_execute`` hook on Airflow's
engine: in this process, or (``python -m tests.webhooks.statements EVENT_ID...``, printing JSON) in a child
process configured for another database."""

from __future__ import annotations

import json
import sys
from typing import Any


def delivery_statements(event_id: str, envelope_id: str = "env_statements") -> tuple[str, list[str]]:
    """(the recorder's answer, the statements it ran) for one completed delivery of ``event_id``."""
    from airflow import settings
    from sqlalchemy import event

    from airflow_provider_certyneo.plugins.asset_events import record_asset_event

    statements: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    payload = {"envelope_id": envelope_id, "event_id": event_id, "status": "COMPLETED", "recipients": []}
    event.listen(settings.engine, "before_cursor_execute", capture)
    try:
        status = record_asset_event("certyneo_default", "completed", payload)
    finally:
        event.remove(settings.engine, "before_cursor_execute", capture)
    return status, statements


if __name__ == "__main__":
    from airflow_provider_certyneo.plugins import claims

    claims.PRUNE_EVERY_DELIVERIES = 10**9  # measure deliveries, not the occasional prune
    claims._next_prune = float("inf")
    print(json.dumps([delivery_statements(event_id) for event_id in sys.argv[1:]]))
