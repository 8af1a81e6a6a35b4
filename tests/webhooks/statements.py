"""The SQL webhook deliveries run — recording them, then draining them into asset events — caught with
SQLAlchemy's ``before_cursor_execute`` hook on Airflow's engine (this thread's statements only; the
process's drainer thread is held meanwhile): in this process, or (``python -m tests.webhooks.statements
[--together] EVENT_ID...``, printing JSON) in a child process configured for another database."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

COMPLETED = "certyneo://certyneo_default/envelopes/completed"


def payload_of(event_id: str, envelope_id: str = "env_statements") -> dict[str, Any]:
    return {"envelope_id": envelope_id, "event_id": event_id, "status": "COMPLETED", "recipients": []}


@contextmanager
def statements_run() -> Iterator[list[str]]:
    """The statements run on Airflow's engine inside the block, each on one line."""
    from airflow import settings
    from sqlalchemy import event

    from airflow_provider_certyneo.plugins import drainer

    statements: list[str] = []
    mine = threading.get_ident()

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() == mine:
            statements.append(" ".join(statement.split()))

    with drainer.held():
        event.listen(settings.engine, "before_cursor_execute", capture)
        try:
            yield statements
        finally:
            event.remove(settings.engine, "before_cursor_execute", capture)


def delivery_statements(event_id: str, envelope_id: str = "env_statements") -> tuple[str, list[str]]:
    """(the recorder's answer, the statements run recording and draining it) for one completed delivery of
    ``event_id``."""
    from airflow_provider_certyneo.plugins.drainer import drain_batch
    from airflow_provider_certyneo.plugins.inbox import record_one

    with statements_run() as statements:
        status = record_one("certyneo_default", "completed", payload_of(event_id, envelope_id))
        if status == "recorded":  # another process's drainer may take it first: its statements are not here
            drain_batch(only=[(COMPLETED, event_id)])
    return status, statements


def together_statements(deliveries: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(the answers, the statements run recording them and draining them) for ``(outcome, event_id)``
    deliveries recorded as one batch, as deliveries arriving together in one API-server worker are."""
    from airflow_provider_certyneo.plugins.drainer import drain_pass
    from airflow_provider_certyneo.plugins.inbox import Delivery, record_batch

    batch = [Delivery("certyneo_default", outcome, payload_of(event_id)) for outcome, event_id in deliveries]
    with statements_run() as statements:
        answers = record_batch(batch)
        drain_pass()
    return [a if isinstance(a, str) else repr(a) for a in answers], statements


if __name__ == "__main__":
    from airflow_provider_certyneo.plugins import claims

    claims.PRUNE_EVERY_DELIVERIES = 10**9  # measure deliveries, not the occasional prune
    claims._next_prune = float("inf")
    args = sys.argv[1:]
    result: object
    if args[:1] == ["--together"]:  # OUTCOME:EVENT_ID ...
        result = together_statements([(o, e) for o, _, e in (arg.partition(":") for arg in args[1:])])
    else:
        result = [delivery_statements(event_id) for event_id in args]
    print(json.dumps(result))
