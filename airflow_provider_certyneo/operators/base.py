"""What every Certyneo operator shares: the connection, a hook made at execute time, the envelope link."""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_certyneo.links.envelope import XCOM_ENVELOPE_URL, CertyneoEnvelopeLink

# The map_index_template of the Certyneo operators and sensor: the label set by ``label_map_index``.
LABEL = "{{ certyneo_label | default('') }}"

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_certyneo.hooks.certyneo import CertyneoHook


class CertyneoHookMixin(BaseOperator):
    """What the operators and the sensor share: a hook made at execute time (never at parse time) and closed
    after, the envelope link, and the reuse of what an earlier try made. Needs ``certyneo_conn_id``.

    Mixed in before ``BaseOperator`` or ``BaseSensorOperator`` (it derives from ``BaseOperator`` only so that
    the type checker knows what it extends)."""

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
        """Store the envelope id and its dashboard URL (from the ``dashboard_url_template``) before any
        wait, also under the "Certyneo envelope" link's own key, which the UI reads: the link works while the
        task is deferred (Airflow would otherwise store it only when the task finishes)."""
        url = self.hook.settings.envelope_url(envelope_id)
        ti = context["ti"]
        ti.xcom_push(key="envelope_id", value=envelope_id)
        ti.xcom_push(key="certyneo_conn_id", value=self.certyneo_conn_id)  # for the Signatures view
        ti.xcom_push(key=XCOM_ENVELOPE_URL, value=url)
        ti.xcom_push(key=CertyneoEnvelopeLink().xcom_key, value=url)
        return url

    def post_execute(self, context: Context, result: Any = None) -> None:
        if "hook" in self.__dict__:
            self.hook.close()
        super().post_execute(context, result)


class CertyneoBaseOperator(CertyneoHookMixin, BaseOperator):
    """Base of the Certyneo operators. Results go to XCom as plain JSON; the key never does.

    :param certyneo_conn_id: the ``certyneo`` connection to use.
    """

    ui_color = "#e8f1fb"

    def __init__(self, *, certyneo_conn_id: str = "certyneo_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.certyneo_conn_id = certyneo_conn_id
