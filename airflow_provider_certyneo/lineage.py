"""OpenLineage for the Certyneo operators: what a task read and wrote, as OpenLineage datasets, and the
Certyneo ids it dealt with, as a run facet.

The operators' ``get_openlineage_facets_on_complete`` call :func:`operator_lineage`; nothing here imports
OpenLineage at module level, so the provider runs without ``apache-airflow-providers-openlineage`` (its
listener is then absent and never asks; asked anyway, :func:`operator_lineage` returns ``None``).

Datasets follow OpenLineage's naming: a local file is namespace ``file`` and its absolute path; an object
store is ``<scheme>://<bucket>`` and the key (``s3://bucket`` + ``contracts/a.pdf``), as
``openlineage.client.naming`` names them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

FACET = "certyneo"  # the run facet's key in the event's run.facets


def dataset_name(location: Any) -> tuple[str, str]:
    """(namespace, name) of a file: a local path, a ``file://`` / ``s3://`` … URL, or an ObjectStoragePath
    (whose ``str`` is its URL). Relative local paths are made absolute, as the task saw them."""
    text = str(location) if hasattr(type(location), "fs") else os.fspath(location)  # no fs made
    if "://" not in text:
        return "file", str(Path(text).expanduser().absolute())
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    host = parts.netloc.rsplit("@", 1)[-1]  # an ObjectStoragePath may carry its conn_id as user@
    path = unquote(parts.path)
    if scheme == "file":
        return ("file" if host in ("", "localhost") else f"file://{host}"), path
    return f"{scheme}://{host}", path.lstrip("/")


def distinct(locations: Iterable[Any]) -> list[tuple[str, str]]:
    """The datasets of ``locations``, each once, in the order first seen; ``None`` entries are skipped."""
    return list(dict.fromkeys(dataset_name(loc) for loc in locations if loc is not None and str(loc)))


@functools.cache
def run_facet_class() -> type:
    """``CertyneoRunFacet``, made on first use (it subclasses OpenLineage's ``RunFacet``, which may not be
    installed). Published as this module's attribute so that it pickles by reference."""
    import attr
    from airflow.providers.common.compat.openlineage.facet import RunFacet

    @attr.define
    class CertyneoRunFacet(RunFacet):
        """The Certyneo objects a task made or read: no standard facet holds a list of ids in an outside
        system (``ExternalQueryRunFacet`` holds one query id)."""

        envelopeIds: list[str] = attr.field(factory=list)  # OpenLineage spells fields in camelCase
        documentIds: list[str] = attr.field(factory=list)

    CertyneoRunFacet.__module__ = __name__
    CertyneoRunFacet.__qualname__ = "CertyneoRunFacet"
    return CertyneoRunFacet


def __getattr__(name: str) -> Any:
    if name == "CertyneoRunFacet":
        return run_facet_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def operator_lineage(
    inputs: Iterable[Any] = (),
    outputs: Iterable[Any] = (),
    envelope_ids: Iterable[str | None] = (),
    document_ids: Iterable[str | None] = (),
) -> Any:
    """An ``OperatorLineage`` with the files read (``inputs``) and written (``outputs``) as datasets and
    the ids as the ``certyneo`` run facet (left out when there are none); ``None`` without OpenLineage."""
    try:
        from airflow.providers.common.compat.openlineage.facet import InputDataset, OutputDataset
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    envelopes = [str(i) for i in dict.fromkeys(envelope_ids) if i]
    documents = [str(i) for i in dict.fromkeys(document_ids) if i]
    run_facets: dict[str, Any] = {}
    if envelopes or documents:
        run_facets[FACET] = run_facet_class()(envelopeIds=envelopes, documentIds=documents)
    return OperatorLineage(
        inputs=[InputDataset(namespace=ns, name=name) for ns, name in distinct(inputs)],
        outputs=[OutputDataset(namespace=ns, name=name) for ns, name in distinct(outputs)],
        run_facets=run_facets,
    )
