"""CertyneoEnvelopeSensor: wait for an envelope to reach a status (default COMPLETED)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import conf

from airflow_provider_certyneo.client.outcomes import can_still_become, describe, progress
from airflow_provider_certyneo.client.types import KNOWN_STATUSES
from airflow_provider_certyneo.exceptions import CertyneoWaitError
from airflow_provider_certyneo.links.envelope import CertyneoEnvelopeLink
from airflow_provider_certyneo.mixins import LABEL
from airflow_provider_certyneo.sensors.base import CertyneoBaseSensor
from airflow_provider_certyneo.triggers.results import EnvelopeResult

if TYPE_CHECKING:
    from airflow.sdk import Context, XComArg


PROGRESS_KEY = "certyneo_progress"


class CertyneoEnvelopeSensor(CertyneoBaseSensor):
    """Succeeds when the envelope reaches ``target_status``; fails at once, without retries, when it reaches
    a status from which the target can never come (DECLINED, VOIDED, EXPIRED…), naming who declined and why.

    Works in ``poke`` and ``reschedule`` mode, and deferrable (the Certyneo trigger; no worker slot held).

    :param envelope_id: the envelope. Templated.
    :param target_status: the awaited status (default ``COMPLETED``).
    :param certyneo_conn_id: the ``certyneo`` connection.
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("envelope_id",)
    operator_extra_links = (CertyneoEnvelopeLink(),)

    def __init__(
        self,
        *,
        envelope_id: str | XComArg,
        target_status: str = "COMPLETED",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        map_index_template: str | None = LABEL,
        **kwargs: Any,
    ) -> None:
        super().__init__(map_index_template=map_index_template, **kwargs)
        if target_status not in KNOWN_STATUSES:
            raise ValueError(f"target_status must be one of {sorted(KNOWN_STATUSES)}, not {target_status!r}")
        self.envelope_id: str = envelope_id  # type: ignore[assignment]  # an XComArg is resolved by execute
        self.target_status = target_status
        self.deferrable = deferrable
        self._last_seen: str | None = None
        self._label: str | None = None
        self._last_line: str | None = None

    def execute(self, context: Context) -> Any:
        """Defer at once when deferrable (one poller per triggerer), else poke as a classic sensor."""
        self.push_envelope_link(context, self.envelope_id)
        if not self.deferrable or self.poke(context):
            return super().execute(context)
        from airflow_provider_certyneo.triggers.envelope import CertyneoEnvelopeTrigger

        timeout = timedelta(seconds=self.timeout) if self.timeout is not None else None
        trigger = CertyneoEnvelopeTrigger(
            self.envelope_id,
            self.certyneo_conn_id,
            float(self.poke_interval),
            self.wait_deadline(context, timeout),
            [self.target_status],
            known_as_of=self._last_seen,
        )
        return self.defer_or_wait(context, trigger, deferrable=True, kwargs={"label": self._label})

    def poke(self, context: Context) -> bool:
        """Whether the envelope has reached the target; fails at once when it never can."""
        envelope: dict[str, Any] = dict(self.hook.get_envelope(self.envelope_id))
        self._last_seen = envelope.get("updatedAt")
        self._label = self.label_map_index(context, envelope)
        self._log_progress(context, envelope)
        status = envelope["status"]
        if status == self.target_status:
            return True
        if not can_still_become(status, [self.target_status]):
            self.log.error("%s", describe(envelope))
            raise CertyneoWaitError(f"{describe(envelope)}; it can never become {self.target_status}")
        return False

    def _log_progress(self, context: Context, envelope: dict[str, Any]) -> None:
        """Log :func:`~airflow_provider_certyneo.client.outcomes.progress` when it changed since the last
        poke. In ``reschedule`` mode each poke is a new process: the last line is kept in the task state store
        (Airflow 3.3+; on 3.1 and 3.2 every rescheduled poke logs its line)."""
        line = progress(envelope)
        store: Any = context.get("task_state_store") if self.mode == "reschedule" else None
        if self._last_line is None and store is not None:
            saved = store.get(PROGRESS_KEY)
            self._last_line = saved if isinstance(saved, str) else None
        if line == self._last_line:
            return
        self._last_line = line
        self.log.info("envelope %s: %s", self.envelope_id, line)
        if store is not None:
            store.set(PROGRESS_KEY, line)

    def execute_complete(self, context: Context, event: Any, label: str | None = None) -> None:
        """Resume after the deferred wait: succeed, or fail saying who declined or why the wait ended."""
        self.relabel(context, label, self.envelope_id)
        result = EnvelopeResult.read(event, self.envelope_id)
        if result.status == "success":
            self.log.info("%s", result.message)
            return
        self.log.error("%s", result.message)
        raise CertyneoWaitError(result.message)
