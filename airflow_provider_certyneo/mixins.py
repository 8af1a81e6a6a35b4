"""The mixin shared by the Certyneo operators and sensors (kept apart from both, as a true mixin): the hook,
the envelope link, the reuse of what an earlier try made, and the one way a task waits for envelopes."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_certyneo.links.envelope import CertyneoEnvelopeLink

# The map_index_template of the Certyneo operators and sensor: the label set by ``label_map_index``.
LABEL = "{{ certyneo_label | default('') }}"

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator as _OperatorBase
    from airflow.sdk import Context

    from airflow_provider_certyneo.hooks.certyneo import CertyneoHook
    from airflow_provider_certyneo.triggers.base import CertyneoWaitTrigger
else:
    _OperatorBase = object

DEFER_GRACE_SECONDS = 60.0


def defer_timeout(end_time: float | None) -> timedelta | None:
    """Airflow's own timeout for a deferral: a backstop :data:`DEFER_GRACE_SECONDS` after the deadline.
    The trigger itself ends the wait with a ``timeout`` event at ``end_time``; this only catches a trigger
    that could not (its triggerer gone), so the same grace serves every operator and sensor."""
    if end_time is None:
        return None
    return timedelta(seconds=max(0.0, end_time - time.time()) + DEFER_GRACE_SECONDS)


class CertyneoHookMixin(_OperatorBase):
    """What the operators and the sensor share: a hook made at execute time (never at parse time) and closed
    after, the envelope link, and the reuse of what an earlier try made. Needs ``certyneo_conn_id``.

    A true mixin: put it before ``BaseOperator`` or ``BaseSensorOperator`` in the bases (it derives from
    ``BaseOperator`` only for the type checker)."""

    certyneo_conn_id: str

    @staticmethod
    def label_map_index(context: Context, envelope: dict[str, Any]) -> str:
        """Give a mapped task instance a readable name in the UI: subject → recipients. Returns the label:
        a task that defers passes it on (``defer(kwargs=...)``) to :meth:`relabel` after the wait, since
        Airflow renders the name when the task finishes, in the resumed process."""
        emails = ", ".join(r.get("email", "") for r in envelope.get("recipients", []))
        label = f"{envelope.get('subject')} → {emails}"
        context["certyneo_label"] = label  # type: ignore[typeddict-unknown-key]
        return label

    def relabel(self, context: Context, label: str | None, envelope_id: str) -> None:
        """Set the label again after a deferral: the one passed on by ``defer(kwargs=...)``, or, where the
        resumption did not carry it (``dag.test()`` resumes with the event alone), read from the envelope."""
        if label:
            context["certyneo_label"] = label  # type: ignore[typeddict-unknown-key]
            return
        from airflow_provider_certyneo.exceptions import CertyneoError

        try:
            self.label_map_index(context, dict(self.hook.get_envelope(envelope_id)))
        except CertyneoError as exc:
            self.log.warning("Could not read envelope %s to label this task: %s", envelope_id, exc)

    @cached_property
    def hook(self) -> CertyneoHook:
        """The connection's sync hook, made once per task and closed after it."""
        from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

        return CertyneoHook(self.certyneo_conn_id)

    def earlier_tries_since(self, context: Context, what: str) -> datetime | None:
        """On a retry, when the DAG run started: ``what`` an earlier try made since then (its worker may have
        died before the answer came) is used rather than made twice. None on a first try."""
        if context["ti"].try_number <= 1:
            return None
        self.log.info(
            "Try %d: %s left by an earlier try is used instead of making a second one",
            context["ti"].try_number,
            what,
        )
        dag_run = context["dag_run"]
        started: datetime = dag_run.start_date or dag_run.run_after
        return started

    def push_envelope_link(self, context: Context, envelope_id: str) -> str:
        """Store the envelope id and its dashboard URL (from the connection's ``dashboard_url_template``;
        the "Certyneo envelope" link) before any wait."""
        url = self.hook.settings.envelope_url(envelope_id)
        return CertyneoEnvelopeLink.persist(context, envelope_id, url, self.certyneo_conn_id)

    def wait_deadline(self, context: Context, timeout: timedelta | float | None) -> float | None:
        """Epoch seconds at which waiting must stop: the earlier of ``timeout`` from now and the task's
        ``execution_timeout`` counted from its start (which Airflow does not enforce while deferred)."""
        now = time.time()
        candidates: list[float] = []
        if timeout is not None:
            seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
            candidates.append(now + seconds)
        if self.execution_timeout is not None:
            started = getattr(context.get("ti"), "start_date", None)
            start = started.timestamp() if started is not None else now
            candidates.append(start + self.execution_timeout.total_seconds())
        return min(candidates) if candidates else None

    def defer_or_wait(
        self,
        context: Context,
        trigger: CertyneoWaitTrigger[Any],
        *,
        deferrable: bool,
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        """Wait for ``trigger``'s event, then hand it to ``execute_complete(context, event, **kwargs)``: in
        the triggerer when ``deferrable`` (holding no worker slot; the event held back until the deferral has
        settled, see :mod:`~airflow_provider_certyneo.triggers.timing`), else in this process — the same
        trigger, the same events."""
        if deferrable:
            from airflow_provider_certyneo.triggers.timing import not_before

            self.defer(
                trigger=trigger.holding_until(not_before()),
                method_name="execute_complete",
                kwargs=kwargs,
                timeout=defer_timeout(trigger.end_time),
            )
        complete = getattr(self, "execute_complete")  # noqa: B009 - each task defines its own signature
        return complete(context, trigger.run_in_worker(), **(kwargs or {}))

    def post_execute(self, context: Context, result: Any = None) -> None:
        """Close the hook's HTTP client once the task has run."""
        if "hook" in self.__dict__:
            self.hook.close()
        super().post_execute(context, result)
