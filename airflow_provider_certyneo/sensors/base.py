"""What every Certyneo sensor shares: the connection, a hook made at execute time, the envelope link, and
the one way to wait (the operators' mixin, on Airflow's sensor base, as Amazon's ``AwsBaseSensor``)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseSensorOperator

from airflow_provider_certyneo.client import defaults
from airflow_provider_certyneo.mixins import CertyneoHookMixin


class CertyneoBaseSensor(CertyneoHookMixin, BaseSensorOperator):
    """Base of the Certyneo sensors.

    :param certyneo_conn_id: the ``certyneo`` connection to use.
    """

    def __init__(self, *, certyneo_conn_id: str = defaults.CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.certyneo_conn_id = certyneo_conn_id
