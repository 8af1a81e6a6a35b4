from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

FAST_BACKOFF: dict[str, Any] = {"backoff_base": 0.01, "backoff_cap": 0.05}


@pytest.fixture
def connection(certyneo_emulator: CertyneoEmulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define ``certyneo_<name>`` pointing at the emulator, with extras; returns the connection id."""

    def define(name: str = "test", key: str | None = None, **extra: Any) -> str:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_CERTYNEO_{name.upper()}", certyneo_emulator.connection_json(key, **extra)
        )
        return f"certyneo_{name}"

    return define


@pytest.fixture
def hook(certyneo_emulator: CertyneoEmulator) -> Iterator[CertyneoHook]:
    with CertyneoHook(**FAST_BACKOFF) as h:
        yield h
