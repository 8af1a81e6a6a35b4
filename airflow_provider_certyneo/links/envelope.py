"""The "Certyneo envelope" button on a task: the envelope's page in the Certyneo dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

XCOM_ENVELOPE_URL = "certyneo_envelope_url"


def envelope_url(base_url: str, envelope_id: str, template: str | None = None) -> str:
    """The envelope's dashboard page: ``template`` (the connection's ``dashboard_url_template``) filled in."""
    from airflow_provider_certyneo.defaults import DASHBOARD_URL_TEMPLATE

    return (template or DASHBOARD_URL_TEMPLATE).format(base_url=base_url.rstrip("/"), envelope_id=envelope_id)


class CertyneoEnvelopeLink(BaseOperatorLink):
    """Reads the URL the task pushed to XCom (``certyneo_envelope_url``) before it waited or finished. The
    task also pushes it under this link's own XCom key before it defers, where Airflow's UI reads it: the
    button works while the task waits, not only once it has finished."""

    name = "Certyneo envelope"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        from airflow.providers.common.compat.sdk import XCom

        url = XCom.get_value(key=XCOM_ENVELOPE_URL, ti_key=ti_key)
        return str(url) if url else ""
