"""Operators for envelopes: create a draft, send it (and optionally wait for the signatures), void it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import conf

from airflow_provider_certyneo.client.outcomes import (
    can_still_become,
    describe,
    progress,
    recipients_of,
    sign_urls,
)
from airflow_provider_certyneo.exceptions import (
    CertyneoInvalidStateError,
    CertyneoNotFoundError,
    CertyneoWaitError,
)
from airflow_provider_certyneo.links.envelope import CertyneoEnvelopeLink
from airflow_provider_certyneo.operators.base import LABEL, CertyneoBaseOperator
from airflow_provider_certyneo.triggers.results import EnvelopeResult

if TYPE_CHECKING:
    from airflow.sdk import Context, XComArg

__all__ = [
    "LABEL",
    "CertyneoCreateEnvelopeOperator",
    "CertyneoSendEnvelopeOperator",
    "CertyneoVoidEnvelopeOperator",
]


class CertyneoCreateEnvelopeOperator(CertyneoBaseOperator):
    """Create a DRAFT envelope and return its id.

    Recipients are checked before any request: valid and distinct e-mails, names, at least one SIGNER.
    Never two drafts for one task: a lost answer is recovered by finding the identical draft, and a retried
    task (say its worker died before the answer came) first looks for an identical unsent draft made since
    the DAG run started and uses it. "Identical" is same subject, same document ids and same recipients: two
    tasks of one run making exactly that contract would share one envelope.

    :param subject: 1 to 200 characters. Templated.
    :param document_ids: a document id or a list of 1 to 20 (e.g. an upload task's ``.output``). Templated.
    :param recipients: ``[{"email", "name", "role": "SIGNER"|"CC", "order": 1}, …]``, 1 to 50. Templated.
    :param message: the invitation's message. Templated.
    :param signing_order: ``"PARALLEL"`` (default) or ``"SEQUENTIAL"`` (by ``order``).
    """

    template_fields: Sequence[str] = ("subject", "document_ids", "recipients", "message", "signing_order")
    operator_extra_links = (CertyneoEnvelopeLink(),)

    def __init__(
        self,
        *,
        subject: str,
        document_ids: str | list[str] | XComArg,
        recipients: list[dict[str, Any]] | XComArg,
        message: str | None = None,
        signing_order: str | None = None,
        map_index_template: str | None = LABEL,
        **kwargs: Any,
    ) -> None:
        super().__init__(map_index_template=map_index_template, **kwargs)
        self.subject = subject
        # XComArgs are resolved to their values before execute runs
        self.document_ids: str | list[str] = document_ids  # type: ignore[assignment]
        self.recipients: list[dict[str, Any]] = recipients  # type: ignore[assignment]
        self.message = message
        self.signing_order = signing_order

    def execute(self, context: Context) -> str:
        """Create the draft (reusing an identical one an earlier try left) and return its envelope id."""
        document_ids = [self.document_ids] if isinstance(self.document_ids, str) else list(self.document_ids)
        envelope = self.hook.create_envelope(
            self.subject,
            document_ids,
            self.recipients,
            message=self.message,
            signing_order=self.signing_order,
            reuse_since=self.earlier_tries_since(context, "an identical unsent draft"),
        )
        self.label_map_index(context, dict(envelope))
        url = self.push_envelope_link(context, envelope["id"])
        self.log.info(
            "Created draft envelope %s (%r) for %s: %s",
            envelope["id"],
            envelope["subject"],
            ", ".join(r["email"] for r in envelope["recipients"]),
            url,
        )
        return envelope["id"]


class CertyneoSendEnvelopeOperator(CertyneoBaseOperator):
    """Send a DRAFT envelope's invitations, exactly once; optionally wait until it is signed.

    Exactly once across retries and crashes: a repeated send finds the envelope already past DRAFT (409
    ``invalid_state``) and carries on without a second invitation. Returns ``{"envelope_id", "status",
    "recipients": [{"email", "name", "order", "status", "signedAt"}]}``, plus ``"sign_urls": [{"email",
    "name", "order", "signUrl"}]`` only with ``return_sign_urls=True``.

    Sign URLs are bearer links: whoever holds one can sign. XCom is readable by everyone who may read the
    DAG, so they are returned only when the DAG author asks (to deliver the links through their own
    channel); they are never logged or rendered.

    :param envelope_id: the DRAFT to send. Templated.
    :param wait_for_completion: wait until COMPLETED; fail at once if it is DECLINED, VOIDED or EXPIRED.
    :param deferrable: wait in the triggerer, holding no worker slot (default ``[operators]
        default_deferrable``).
    :param poll_interval: seconds between two checks while waiting.
    :param timeout: the longest wait (seconds or timedelta); ``execution_timeout`` is honoured too, also
        while deferred.
    :param void_on_timeout: void the envelope when the wait times out, so nobody signs it later.
    :param return_sign_urls: also return the signers' sign URLs (bearer links) in XCom; default False.
    """

    template_fields: Sequence[str] = ("envelope_id",)
    operator_extra_links = (CertyneoEnvelopeLink(),)

    def __init__(
        self,
        *,
        envelope_id: str | XComArg,
        wait_for_completion: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 60.0,
        timeout: timedelta | float | None = timedelta(days=30),
        void_on_timeout: bool = False,
        return_sign_urls: bool = False,
        map_index_template: str | None = LABEL,
        **kwargs: Any,
    ) -> None:
        super().__init__(map_index_template=map_index_template, **kwargs)
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, not {poll_interval!r}")
        self.envelope_id: str = envelope_id  # type: ignore[assignment]  # an XComArg is resolved by execute
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.void_on_timeout = void_on_timeout
        self.return_sign_urls = return_sign_urls

    def execute(self, context: Context) -> dict[str, Any]:
        """Send the invitations exactly once, then wait for the signatures if asked."""
        try:
            envelope: dict[str, Any] = dict(self.hook.send_envelope(self.envelope_id))
            self.log.info(
                "Sent envelope %s: invitations went to %s",
                self.envelope_id,
                ", ".join(str(r.get("email")) for r in envelope.get("recipients") or []),
            )
        except CertyneoInvalidStateError as exc:
            if exc.current_status in (None, "DRAFT"):
                raise
            envelope = dict(self.hook.get_envelope(self.envelope_id))
            self.log.info(
                "Envelope %s was already sent (status %s): not sending it again",
                self.envelope_id,
                envelope["status"],
            )
        label = self.label_map_index(context, envelope)
        self.push_envelope_link(context, self.envelope_id)
        result = self._result(envelope)
        if not self.wait_for_completion:
            return result
        if envelope["status"] == "COMPLETED":
            return result
        if not can_still_become(envelope["status"], ["COMPLETED"]):
            raise CertyneoWaitError(describe(envelope))
        self.log.info("envelope %s: %s", self.envelope_id, progress(envelope))
        from airflow_provider_certyneo.triggers.envelope import CertyneoEnvelopeTrigger

        trigger = CertyneoEnvelopeTrigger(
            self.envelope_id,
            self.certyneo_conn_id,
            self.poll_interval,
            self.wait_deadline(context, self.timeout),
            ["COMPLETED"],
            known_as_of=envelope.get("updatedAt"),
        )
        return self.defer_or_wait(context, trigger, deferrable=self.deferrable, kwargs={"label": label})

    def execute_complete(self, context: Context, event: Any, label: str | None = None) -> dict[str, Any]:
        """Resume after the wait: the envelope's outcome, or the reason the wait ended."""
        self.relabel(context, label, self.envelope_id)
        result = EnvelopeResult.read(event, self.envelope_id)
        if result.status == "success":
            self.log.info("%s", result.message)
            return self._result(dict(self.hook.get_envelope(self.envelope_id)))
        if result.status == "timeout":
            return self._timed_out(result.message)
        self.log.error("%s", result.message)
        raise CertyneoWaitError(result.message)

    def _timed_out(self, message: str) -> dict[str, Any]:
        """The deadline passed. Voids (``void_on_timeout``) only an envelope that is still SENT, read now:
        one signed at the last moment is a success, and nothing else than a real deadline gets here (a
        trigger that cannot wait ends with ``error``)."""
        if self.void_on_timeout:
            envelope: dict[str, Any] = dict(self.hook.get_envelope(self.envelope_id))
            if envelope["status"] == "COMPLETED":
                self.log.info("Signed at the deadline: %s", describe(envelope))
                return self._result(envelope)
            if envelope["status"] == "SENT":
                self.hook.void_envelope(self.envelope_id)
                message += "; the envelope was voided (void_on_timeout=True)"
        self.log.error("Timed out waiting for signatures: %s", message)
        raise CertyneoWaitError(f"timed out waiting for signatures: {message}")

    def _result(self, envelope: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {
            "envelope_id": envelope["id"],
            "status": envelope["status"],
            "recipients": recipients_of(envelope),
        }
        if self.return_sign_urls:
            result["sign_urls"] = sign_urls(envelope)
        return result


class CertyneoVoidEnvelopeOperator(CertyneoBaseOperator):
    """Void a SENT envelope or delete a DRAFT; fit for clean-up and ``on_failure`` steps.

    Returns ``{"envelope_id", "status"}`` with ``VOIDED``, ``DELETED``, the terminal status it already had,
    or ``MISSING``. An envelope already terminal or gone is not an error unless ``strict=True``.

    :param envelope_id: the envelope. Templated.
    """

    template_fields: Sequence[str] = ("envelope_id",)

    def __init__(self, *, envelope_id: str | XComArg, strict: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.envelope_id: str = envelope_id  # type: ignore[assignment]  # an XComArg is resolved by execute
        self.strict = strict

    def execute(self, context: Context) -> dict[str, Any]:
        """Void the envelope (or delete the draft) and return what became of it."""
        try:
            voided = self.hook.void_envelope(self.envelope_id)
        except CertyneoInvalidStateError as exc:
            if self.strict:
                raise
            self.log.info("Envelope %s is already %s: nothing to void", self.envelope_id, exc.current_status)
            return {"envelope_id": self.envelope_id, "status": exc.current_status}
        except CertyneoNotFoundError:
            if self.strict:
                raise
            self.log.info("Envelope %s does not exist (any more): nothing to void", self.envelope_id)
            return {"envelope_id": self.envelope_id, "status": "MISSING"}
        status = "DELETED" if voided is None else voided["status"]
        self.log.info("Envelope %s: %s", self.envelope_id, status)
        return {"envelope_id": self.envelope_id, "status": status}
