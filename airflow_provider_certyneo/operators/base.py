"""What every Certyneo operator shares: the connection, a hook made at execute time, the envelope link."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider_certyneo.client import defaults
from airflow_provider_certyneo.mixins import LABEL, CertyneoHookMixin

__all__ = ["LABEL", "CertyneoBaseOperator", "CertyneoHookMixin"]


class CertyneoBaseOperator(CertyneoHookMixin, BaseOperator):
    """Base of the Certyneo operators. Results go to XCom as plain JSON; the key never does.

    :param certyneo_conn_id: the ``certyneo`` connection to use.
    """

    ui_color = "#e8f1fb"

    def __init__(self, *, certyneo_conn_id: str = defaults.CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.certyneo_conn_id = certyneo_conn_id
