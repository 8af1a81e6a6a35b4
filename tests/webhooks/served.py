"""The plugin's FastAPI app mounted as the API server mounts it (``/certyneo``), for a uvicorn of its own:
in this test process (``conftest.py``) or as ``uvicorn --factory tests.webhooks.served:receiver_host
--workers 2``, two worker processes sharing one database, as two API-server workers do."""

from __future__ import annotations

from typing import Any


def receiver_host() -> Any:
    from fastapi import FastAPI

    from airflow_provider_certyneo.plugins.certyneo import CertyneoPlugin

    (app_spec,) = CertyneoPlugin.fastapi_apps
    host = FastAPI()
    host.mount(app_spec["url_prefix"], app_spec["app"])
    return host
