"""A local, faithful Certyneo API v1 for tests, demos and benchmarks.

A room of its own: the provider's hook, operators and triggers never import it, and it reuses none of
their code, so that a bug in the client's parsing cannot hide behind the same bug in the server.
"""

from __future__ import annotations

from airflow_provider_certyneo.emulator.config import EmulatorConfig
from airflow_provider_certyneo.emulator.handle import EmulatorControl
from airflow_provider_certyneo.emulator.server import EmulatorServer

__all__ = ["EmulatorConfig", "EmulatorControl", "EmulatorServer"]
