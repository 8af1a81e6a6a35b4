"""CertyneoPlugin, loaded by every Airflow process through the ``airflow.plugins`` entry point (the provider
info's ``plugins`` key alone is not read while providers are discovered lazily, the default).

It mounts ``POST /certyneo/webhooks/{conn_id}`` on the API server, and the Signatures view
(:mod:`.pages`): a "Signatures" tab on every DAG run and a "Signatures" page under Browse; and it starts the
webhook drainer (:mod:`.drainer`) in each API-server worker as the worker starts. Importing this module is
cheap: the receiver's FastAPI app is built on its first request, and the drainer's module imported when a
worker starts, so the scheduler, workers and triggerers, which import every plugin, pay nothing for them.
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


class StartsTheDrainer:
    """Airflow's root ASGI middleware for the plugin: on the API-server worker's start (the ASGI lifespan,
    which Airflow passes to no mounted app but a FastAPI one), it starts the webhook drainer, so that what
    was recorded before a restart is registered without waiting for a request. Requests pass straight
    through."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            from airflow_provider_certyneo.plugins import drainer

            drainer.start()
        await self.app(scope, receive, send)


# A pen (inline SVG): no file to serve.
ICON = (
    "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' "
    "stroke='currentColor' stroke-width='2'><path d='M12 20h9'/><path d='M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 "
    "1 1-4Z'/></svg>"
)


class CertyneoPlugin(AirflowPlugin):
    """Receives Certyneo's signed webhooks and turns completed and declined envelopes into asset events;
    shows who has signed and who is holding things up (the Signatures view)."""

    name = "certyneo"
    fastapi_apps = [  # noqa: RUF012 - Airflow's plugin interface is a class attribute list
        {
            "app": LazyApp("airflow_provider_certyneo.plugins.receiver:create_app"),
            "url_prefix": "/certyneo",
            "name": "Certyneo webhooks and Signatures view",
        }
    ]
    fastapi_root_middlewares = [  # noqa: RUF012 - Airflow's plugin interface is a class attribute list
        {"middleware": StartsTheDrainer, "name": "Certyneo webhook drainer"}
    ]
    # Airflow 3.1+: a tab on each DAG run (shown in an iframe; a run without Certyneo tasks says so) and a
    # page under Browse. The pages authenticate with the UI's own session.
    external_views = [  # noqa: RUF012 - Airflow's plugin interface is a class attribute list
        {
            "name": "Signatures",
            "href": "/certyneo/signatures/runs/{DAG_ID}/{RUN_ID}",
            "destination": "dag_run",
            "url_route": "certyneo-signatures",
            "icon": ICON,
        },
        {
            "name": "Signatures",
            "href": "/certyneo/signatures/waiting",
            "destination": "nav",
            "category": "browse",
            "url_route": "certyneo-signatures-waiting",
            "icon": ICON,
        },
    ]
