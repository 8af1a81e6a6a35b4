"""A Certyneo emulator in its own process for benchmarks, so that it does not share the client's GIL."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from airflow_provider_certyneo.emulator.handle import EmulatorControl, connection_json
from airflow_provider_certyneo.emulator.server import emulator_process

KEY = "sk_test_" + "benchmark" * 4


@contextmanager
def emulator(per_minute: float, burst: int, **extra: float) -> Iterator[tuple[str, EmulatorControl]]:
    """Yields (connection id, control); ``AIRFLOW_CONN_CERTYNEO_BENCH`` points at the emulator."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="certyneo-bench-"))
    with emulator_process(KEY, per_minute, burst) as base_url:
        os.environ["AIRFLOW_CONN_CERTYNEO_BENCH"] = connection_json(
            base_url, KEY, rate_limit_per_minute=per_minute, rate_limit_burst=burst, **extra
        )
        control = EmulatorControl(base_url)
        yield "certyneo_bench", control
        control.close()
