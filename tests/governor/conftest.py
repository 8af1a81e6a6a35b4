from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis import RedisServer, require_redis_server


@pytest.fixture
def redis_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisServer]:
    """A real redis-server on a free port, defined as the ``redis_fleet`` connection. Skipped only outside
    CI when Redis is not installed (``make test`` installs it; in CI a missing server fails the test)."""
    require_redis_server()
    with RedisServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_REDIS_FLEET", server.conn_json)
        yield server
