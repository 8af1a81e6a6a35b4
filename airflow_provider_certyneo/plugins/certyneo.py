"""CertyneoPlugin, loaded by every Airflow process through the ``airflow.plugins`` entry point (the provider
info's ``plugins`` key alone is not read while providers are discovered lazily, the default).

It mounts ``POST /certyneo/webhooks/{conn_id}`` on the API server. Importing this module is cheap: the
receiver's FastAPI app is built on its first request, so the scheduler, workers and triggerers, which
import every plugin, pay nothing for it.
"""

from __future__ import annotations

import importlib
from typing import Any

from airflow.plugins_manager import AirflowPlugin


class LazyApp:
    """An ASGI app that builds the real one (``module:factory``) on first use."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            module, _, factory = self.target.partition(":")
            self._app = getattr(importlib.import_module(module), factory)()
        await self._app(scope, receive, send)


class CertyneoPlugin(AirflowPlugin):
    """Receives Certyneo's signed webhooks and turns completed and declined envelopes into asset events."""

    name = "certyneo"
    fastapi_apps = [  # noqa: RUF012 - Airflow's plugin interface is a class attribute list
        {
            "app": LazyApp("airflow_provider_certyneo.plugins.receiver:create_app"),
            "url_prefix": "/certyneo",
            "name": "Certyneo webhooks",
        }
    ]
