"""The "Certyneo envelope" button on a task: the envelope's page in the Certyneo dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

XCOM_ENVELOPE_URL = "certyneo_envelope_url"


def envelope_url(base_url: str, envelope_id: str) -> str:
    """The envelope's page in the Certyneo dashboard."""
    return f"{base_url.rstrip('/')}/app/envelopes/{envelope_id}"


class CertyneoEnvelopeLink(BaseOperatorLink):
    """Reads the URL the task pushed to XCom (``certyneo_envelope_url``) before it waited or finished."""

    name = "Certyneo envelope"

    @classmethod
    def persist(cls, context: Context, base_url: str, envelope_id: str) -> str:
        """Store the envelope id and its dashboard URL for this task instance (before any wait, so the
        button works while the task waits); returns the URL."""
        url = envelope_url(base_url, envelope_id)
        context["ti"].xcom_push(key="envelope_id", value=envelope_id)
        context["ti"].xcom_push(key=XCOM_ENVELOPE_URL, value=url)
        return url

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """The URL the task stored in XCom (None before it made an envelope)."""
        from airflow.providers.common.compat.sdk import XCom

        url = XCom.get_value(key=XCOM_ENVELOPE_URL, ti_key=ti_key)
        return str(url) if url else ""
