from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _fleet import RedisServer


@pytest.fixture
def redis_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisServer]:
    """A real redis-server on a free port, defined as the ``redis_fleet`` connection. Skipped only outside
    CI when Redis is not installed (``make test`` installs it; in CI a missing server fails the test)."""
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed: `make test` installs it (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with RedisServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_REDIS_FLEET", server.conn_json)
        yield server
