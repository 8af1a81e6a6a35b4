"""Archive signed contracts as evidence that proves itself: signed PDF, audit trail and ``evidence.json``
per envelope, each bundle verified (PAdES seals, audit trail, hashes) before it is called evidence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_certyneo.operators.base import CertyneoBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_certyneo.evidence.archive import Outcome

MODES = {True: "strict", "strict": "strict", "warn": "warn"}
SHOWN = 10


def envelope_ids_of(value: Any) -> list[str]:
    """Envelope ids from one id, a list of ids, or the bulk operator's results (``envelope_id`` per row;
    rows that made no envelope are left out)."""
    from airflow_provider_certyneo.exceptions import CertyneoValidationError

    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, Mapping):
        items = [value]
    elif isinstance(value, Sequence) or hasattr(value, "__iter__"):
        items = list(value)
    else:
        raise CertyneoValidationError(
            f"envelope_ids is a {type(value).__name__}; give an envelope id, a list of them, or the bulk "
            "operator's results"
        )
    ids: list[str] = []
    for item in items:
        if isinstance(item, Mapping):
            found = item.get("envelope_id") or item.get("id")
            if found:
                ids.append(str(found))
        elif isinstance(item, str) and item.strip():
            ids.append(item.strip())
        elif item is not None:
            raise CertyneoValidationError(
                f"envelope_ids holds a {type(item).__name__} ({item!r}); each item must be an envelope id "
                "or a mapping with 'envelope_id'"
            )
    return list(dict.fromkeys(ids))


def written_by(outcome: Outcome) -> list[str]:
    """The files archiving one envelope wrote: the two PDFs and ``evidence.json`` (``evidence.rejected.json``
    when it did not verify); nothing for a bundle skipped as complete or an envelope not completed."""
    from airflow_provider_certyneo.evidence import bundle

    if outcome.state not in ("archived", "rejected"):
        return []
    record = bundle.EVIDENCE if outcome.state == "archived" else bundle.REJECTED
    names = [bundle.signed_name(outcome.envelope_id), bundle.trail_name(outcome.envelope_id), record]
    return [f"{outcome.folder.rstrip('/')}/{name}" for name in names]


class CertyneoArchiveEvidenceOperator(CertyneoBaseOperator):
    """Archive each envelope's signed PDF, audit trail and ``evidence.json`` under
    ``<destination>/<envelope id>/``, verifying them first.

    Checked for each envelope, offline (nothing is fetched but the envelope, its documents and the two
    PDFs): the signed PDF carries one PAdES seal that is intact, covers the whole file, was made by a
    non-repudiation certificate chaining to the trust roots, with a signing time and a trusted timestamp;
    the audit trail is sealed the same way, its ``audit-trail.json`` is this envelope's, lists the
    envelope's documents with the SHA-256 of their records (and of ``uploaded_sha256``), the SHA-256 of the
    archived signed PDF, and the envelope's signers, each with a signed event. The result goes into
    ``evidence.json`` (``"verification"``) and one log line per envelope.

    Idempotent: a complete bundle is skipped; a half-written one (no ``evidence.json``) is archived again.
    A failing check fails the task (after every envelope was tried) naming the envelope and the check; that
    bundle gets ``evidence.rejected.json`` and no ``evidence.json``. With ``verify="warn"`` it is archived
    with ``"ok": false`` and a warning instead (accounts whose documents are not sealed). Envelopes not
    COMPLETED are skipped (the task is skipped when no envelope was completed).

    Needs the ``evidence`` extra (pyHanko), imported when the task runs.

    :param envelope_ids: an envelope id, a list of them, or the bulk operator's results. Templated.
    :param destination: a local folder or an ``ObjectStoragePath`` / URL (``s3://…``). Templated.
    :param trust_roots: PEM text or path(s) of the roots seals must chain to; default the connection's
        ``evidence_trust_roots`` extra. Templated.
    :param verify: ``True`` (fail on any failed check) or ``"warn"`` (archive and warn).
    :param uploaded_sha256: ``{document id: SHA-256}`` computed when the provider uploaded the documents,
        compared with the audit trail. Templated.
    :param record_extra: ``{envelope id: {field: value}}`` added to that envelope's ``evidence.json`` (for
        example the asset event that triggered the archive). Templated.
    """

    template_fields: Sequence[str] = (
        "envelope_ids",
        "destination",
        "trust_roots",
        "uploaded_sha256",
        "record_extra",
    )

    def __init__(
        self,
        *,
        envelope_ids: Any,
        destination: Any,
        trust_roots: Any = None,
        verify: bool | str = True,
        uploaded_sha256: Mapping[str, str] | None = None,
        record_extra: Mapping[str, Mapping[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if verify not in MODES:
            from airflow_provider_certyneo.exceptions import CertyneoValidationError

            raise CertyneoValidationError(
                f"verify is {verify!r}; use True (a failed check fails the task) or 'warn' (archive and warn)"
            )
        self.envelope_ids = envelope_ids
        self.destination = destination
        self.trust_roots = trust_roots
        self.verify = verify
        self.uploaded_sha256 = uploaded_sha256
        self.record_extra = record_extra
        self.archived: list[tuple[str, list[str]]] = []  # (envelope id, files written), for lineage

    def _trust_roots(self, mode: str) -> list[Any]:
        from airflow_provider_certyneo.evidence.trust import load_trust_roots
        from airflow_provider_certyneo.exceptions import CertyneoConfigError

        conn_id = self.certyneo_conn_id
        roots = load_trust_roots(
            [
                (self.trust_roots, "the operator's trust_roots"),
                (
                    None if self.trust_roots else self.hook.settings.evidence_trust_roots,
                    f"connection {conn_id!r}: extra field 'evidence_trust_roots'",
                ),
            ]
        )
        if not roots and mode == "strict":
            raise CertyneoConfigError(
                f"no trust roots to verify Certyneo's seals: set the extra field 'evidence_trust_roots' of "
                f"connection {conn_id!r} (PEM text or a path) or the operator's trust_roots, or pass "
                "verify='warn' to archive unverified"
            )
        return roots

    def execute(self, context: Context) -> Any:
        """Archive and verify every envelope; returns one outcome (or a list, for a list of envelopes)."""
        from airflow.providers.common.compat.sdk import AirflowSkipException

        from airflow_provider_certyneo.evidence.archive import archive_envelope
        from airflow_provider_certyneo.exceptions import CertyneoEvidenceError, CertyneoValidationError

        mode = MODES[self.verify]
        ids = envelope_ids_of(self.envelope_ids)
        if self.record_extra is not None and not isinstance(self.record_extra, Mapping):
            raise CertyneoValidationError(
                "record_extra must map envelope ids to mappings of extra evidence.json fields"
            )
        roots = self._trust_roots(mode)
        outcomes = []
        for envelope_id in ids:
            outcome = archive_envelope(
                self.hook,
                envelope_id,
                self.destination,
                roots,
                mode,
                self.uploaded_sha256,
                (self.record_extra or {}).get(envelope_id),
            )
            self._log(outcome)
            outcomes.append(outcome)
            self.archived.append((envelope_id, written_by(outcome)))
        rejected = [o for o in outcomes if o.state == "rejected"]
        if rejected:
            lines = [f"{o.envelope_id}: {o.report.summary() if o.report else ''}" for o in rejected[:SHOWN]]
            more = f" … and {len(rejected) - SHOWN} more" if len(rejected) > SHOWN else ""
            raise CertyneoEvidenceError(
                f"the evidence of {len(rejected)} of {len(outcomes)} envelope(s) did not verify and was not "
                f"archived as evidence: " + " | ".join(lines) + more
            )
        if outcomes and all(o.state == "not_completed" for o in outcomes):
            raise AirflowSkipException(
                "nothing to archive: "
                + ", ".join(f"{o.envelope_id} is {o.record.get('status')}" for o in outcomes[:SHOWN])
            )
        results = [o.to_json() for o in outcomes]
        return results[0] if isinstance(self.envelope_ids, str) and results else results

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the files each bundle wrote (outputs) and the envelopes (run facet ``certyneo``).
        Also what a failing task reports (Airflow falls back to this method): what it wrote before."""
        from airflow_provider_certyneo.lineage import operator_lineage

        return operator_lineage(
            outputs=[path for _, paths in self.archived for path in paths],
            envelope_ids=[envelope_id for envelope_id, _ in self.archived],
        )

    def _log(self, outcome: Outcome) -> None:
        seal = (outcome.record.get("verification") or {}) if outcome.record else {}
        if outcome.state == "skipped":
            self.log.info("%s: complete bundle in %s, skipped", outcome.envelope_id, outcome.folder)
        elif outcome.state == "not_completed":
            self.log.info(
                "%s: %s, not completed: nothing to archive", outcome.envelope_id, outcome.record.get("status")
            )
        elif outcome.ok:
            self.log.info(
                "%s: verified (%s; seal %s, certificate sha256 %s, timestamp %s), archived to %s",
                outcome.envelope_id,
                outcome.report.summary() if outcome.report else "",
                seal.get("certificate_subject"),
                seal.get("certificate_sha256"),
                seal.get("timestamp_time"),
                outcome.folder,
            )
        elif outcome.state == "archived":
            self.log.warning(
                "%s: NOT verified (%s), archived anyway (verify='warn') to %s",
                outcome.envelope_id,
                outcome.report.summary() if outcome.report else "",
                outcome.folder,
            )
        else:
            self.log.error(
                "%s: NOT verified (%s); see %s/evidence.rejected.json",
                outcome.envelope_id,
                outcome.report.summary() if outcome.report else "",
                outcome.folder,
            )
