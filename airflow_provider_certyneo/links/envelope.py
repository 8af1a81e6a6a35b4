"""The "Certyneo envelope" button on a task: the envelope's page in the Certyneo dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

XCOM_ENVELOPE_URL = "certyneo_envelope_url"


def envelope_url(base_url: str, envelope_id: str) -> str:
    """The envelope's page in the Certyneo dashboard."""
    return f"{base_url.rstrip('/')}/app/envelopes/{envelope_id}"


class CertyneoEnvelopeLink(BaseOperatorLink):
    """Reads the URL the task pushed to XCom (``certyneo_envelope_url``) before it waited or finished."""

    name = "Certyneo envelope"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """The URL the task stored in XCom (None before it made an envelope)."""
        from airflow.providers.common.compat.sdk import XCom

        url = XCom.get_value(key=XCOM_ENVELOPE_URL, ti_key=ti_key)
        return str(url) if url else ""
