"""Operators for PDFs: upload one, download the signed PDF or the audit trail of an envelope."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_certyneo import xcom
from airflow_provider_certyneo.operators.base import CertyneoBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context, XComArg

    from airflow_provider_certyneo.client.types import DownloadResult


class CertyneoUploadDocumentOperator(CertyneoBaseOperator):
    """Upload a PDF and return its document id.

    The file is checked before any request (exists, is a PDF, at most 25 MiB) and streamed, never read
    into memory. A retry after a lost answer, or a retried task whose earlier try uploaded the file (say its
    worker died before the answer), finds the document already uploaded instead of adding a copy.

    :param source: a local path, a ``file://`` / ``s3://`` … URL, or an ``ObjectStoragePath``. Templated.
    :param filename: the name Certyneo shows (default: the file's name). Templated.
    """

    template_fields: Sequence[str] = ("source", "filename")

    def __init__(self, *, source: Any, filename: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.filename = filename
        self.uploaded: tuple[Any, str] | None = None  # (what was read, its document id), for lineage

    def execute(self, context: Context) -> str:
        """Upload the PDF (reusing what an earlier try uploaded) and return its document id."""
        document = self.hook.upload_document(
            self.source, self.filename, reuse_since=self.earlier_tries_since(context, "the same file")
        )
        self.log.info(
            "Uploaded %s as %s (%d pages, sha256 %s)",
            document["filename"],
            document["id"],
            document["pages"],
            document["sha256"],
        )
        context["ti"].xcom_push(key=xcom.DOCUMENT, value=dict(document))
        self.uploaded = (self.source, document["id"])
        return document["id"]

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the PDF read (input) and its document id (run facet ``certyneo``)."""
        from airflow_provider_certyneo.lineage import operator_lineage

        source, document_id = self.uploaded or (None, None)
        return operator_lineage(inputs=[source], document_ids=[document_id])


class _CertyneoDownloadOperator(CertyneoBaseOperator):
    """Stream one of an envelope's PDFs to a file or directory; return its path, SHA-256 and size."""

    template_fields: Sequence[str] = ("envelope_id", "destination")
    what = ""

    def __init__(
        self, *, envelope_id: str | XComArg, destination: Any, overwrite: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.envelope_id: str = envelope_id  # type: ignore[assignment]  # an XComArg is resolved by execute
        self.destination = destination
        self.overwrite = overwrite
        self.saved: str | None = None  # where the PDF was written, for lineage

    def execute(self, context: Context) -> DownloadResult:
        download = getattr(self.hook, f"download_{self.what}")
        result: DownloadResult = download(self.envelope_id, self.destination, overwrite=self.overwrite)
        self.log.info(
            "Saved the %s of %s to %s (%d bytes, sha256 %s)",
            self.what.replace("_", " "),
            self.envelope_id,
            result["path"],
            result["size"],
            result["sha256"],
        )
        self.saved = result["path"]
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the PDF written (output) and the envelope (run facet ``certyneo``)."""
        from airflow_provider_certyneo.lineage import operator_lineage

        if self.saved is None:
            return operator_lineage()
        return operator_lineage(outputs=[self.saved], envelope_ids=[self.envelope_id])


class CertyneoDownloadSignedDocumentOperator(_CertyneoDownloadOperator):
    """Download the signed PDF of a COMPLETED envelope.

    :param envelope_id: the envelope. Templated.
    :param destination: a file or a directory (ending in ``/`` or existing), local or ``ObjectStoragePath``;
        a directory receives ``<envelope id>-signed-document.pdf``. Templated.
    :param overwrite: replace an existing file (default: refuse).
    """

    what = "signed_document"


class CertyneoDownloadAuditTrailOperator(_CertyneoDownloadOperator):
    """Download the eIDAS audit trail of a sent envelope. Same parameters as the signed-document operator."""

    what = "audit_trail"
