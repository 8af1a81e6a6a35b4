"""Apache Airflow provider for Certyneo, the European (eIDAS) e-signature service."""

from __future__ import annotations

from typing import Any

from airflow_provider_certyneo.version import __version__

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    from airflow_provider_certyneo.provider_info import provider_info

    return provider_info()
