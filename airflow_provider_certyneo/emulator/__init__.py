"""A local, faithful Certyneo API v1 for tests, demos and benchmarks.

A room of its own: the provider's hook, operators and triggers never import it, and it reuses none of
their code, so that a bug in the client's parsing cannot hide behind the same bug in the server.
Importing this package is cheap: FastAPI, uvicorn and pypdf are imported only when a server is made.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_certyneo.emulator.config import EmulatorConfig
    from airflow_provider_certyneo.emulator.handle import EmulatorControl
    from airflow_provider_certyneo.emulator.server import EmulatorServer

__all__ = ["EmulatorConfig", "EmulatorControl", "EmulatorServer"]
_HOMES = {"EmulatorConfig": "config", "EmulatorControl": "handle", "EmulatorServer": "server"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
