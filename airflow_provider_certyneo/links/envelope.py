"""The "Certyneo envelope" button on a task: the envelope's page in the Certyneo dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

from airflow_provider_certyneo import xcom

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey


def envelope_url(base_url: str, envelope_id: str, template: str | None = None) -> str:
    """The envelope's dashboard page: ``template`` (the connection's ``dashboard_url_template``) filled in."""
    from airflow_provider_certyneo.client.defaults import DASHBOARD_URL_TEMPLATE

    return (template or DASHBOARD_URL_TEMPLATE).format(base_url=base_url.rstrip("/"), envelope_id=envelope_id)


class CertyneoEnvelopeLink(BaseOperatorLink):
    """Reads the URL the task pushed to XCom (``certyneo_envelope_url``) before it waited or finished. The
    task also pushes it under this link's own XCom key before it defers, where Airflow's UI reads it: the
    button works while the task waits, not only once it has finished."""

    name = "Certyneo envelope"

    @classmethod
    def persist(cls, context: Context, envelope_id: str, url: str, conn_id: str) -> str:
        """Store the envelope id, its connection (for the Signatures view) and its dashboard URL for this
        task instance before any wait, also under this link's own XCom key, which the UI reads: the button
        works while the task is deferred (Airflow would otherwise store it only when the task finishes)."""
        ti = context["ti"]
        ti.xcom_push(key=xcom.ENVELOPE_ID, value=envelope_id)
        ti.xcom_push(key=xcom.CONN_ID, value=conn_id)
        ti.xcom_push(key=xcom.ENVELOPE_URL, value=url)
        ti.xcom_push(key=cls().xcom_key, value=url)
        return url

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """The URL the task stored in XCom (None before it made an envelope)."""
        from airflow.providers.common.compat.sdk import XCom

        url = XCom.get_value(key=xcom.ENVELOPE_URL, ti_key=ti_key)
        return str(url) if url else ""
