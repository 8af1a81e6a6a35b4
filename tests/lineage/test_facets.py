"""The OpenLineage facets themselves, fast: dataset names, the ``certyneo`` run facet, and what each operator
reports after its ``execute`` (called directly, against the emulator). The events of real runs are in
tests/dags/test_lineage_events.py."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_certyneo import lineage
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook
from airflow_provider_certyneo.operators.bulk import CertyneoBulkSendOperator
from airflow_provider_certyneo.operators.document import (
    CertyneoDownloadSignedDocumentOperator,
    CertyneoUploadDocumentOperator,
)
from tests.evidence.conftest import Signed, make_signed
from tests.support.manifests import write_manifest
from tests.unit.conftest import SIGNER, FakeTaskInstance, make_context, run

pytest.importorskip("airflow.providers.openlineage")

__all__ = ["make_signed"]  # the evidence tests' fixture, used here too


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/data/contrat.pdf", ("file", "/data/contrat.pdf")),
        ("file:///data/a%20b.pdf", ("file", "/data/a b.pdf")),
        ("file://localhost/data/a.pdf", ("file", "/data/a.pdf")),
        ("file://nas01/data/a.pdf", ("file://nas01", "/data/a.pdf")),
        ("s3://contracts/2026/a.pdf", ("s3://contracts", "2026/a.pdf")),
        ("s3://aws_default@contracts/2026/a.pdf", ("s3://contracts", "2026/a.pdf")),
        ("gs://evidence/e1/evidence.json", ("gs://evidence", "e1/evidence.json")),
    ],
)
def test_files_are_named_as_openlineage_names_them(location: str, expected: tuple[str, str]) -> None:
    assert lineage.dataset_name(location) == expected


def test_relative_paths_and_object_storage_paths() -> None:
    from airflow.sdk import ObjectStoragePath

    assert lineage.dataset_name(Path("rel/a.pdf")) == ("file", str(Path.cwd() / "rel" / "a.pdf"))
    # no filesystem is made (none is registered for s3 here)
    assert lineage.dataset_name(ObjectStoragePath("s3://contracts/a.pdf")) == ("s3://contracts", "a.pdf")
    assert lineage.dataset_name(ObjectStoragePath("file:///data/a.pdf")) == ("file", "/data/a.pdf")


def test_the_run_facet_holds_each_id_once_and_serialises() -> None:
    from openlineage.client.serde import Serde

    result = lineage.operator_lineage(
        inputs=["/data/a.pdf", None, "file:///data/a.pdf"],
        outputs=["s3://archive/e1/evidence.json"],
        envelope_ids=["e1", None, "e1", "e2"],
    )
    assert [(d.namespace, d.name) for d in result.inputs] == [("file", "/data/a.pdf")]
    assert [(d.namespace, d.name) for d in result.outputs] == [("s3://archive", "e1/evidence.json")]
    facet = result.run_facets[lineage.FACET]
    assert type(facet).__name__ == "CertyneoRunFacet"
    record = json.loads(Serde.to_json(facet))
    assert record["envelopeIds"] == ["e1", "e2"]
    assert record["documentIds"] == []
    assert record["_schemaURL"].endswith("#/$defs/RunFacet")
    assert pickle.loads(pickle.dumps(facet)) == facet, "the listener may hand facets to another process"
    assert lineage.operator_lineage().run_facets == {}, "no ids, no facet"


def ti_context(task_id: str) -> Any:
    return make_context(FakeTaskInstance(task_id=task_id))


def test_upload_reports_the_pdf_it_read_and_its_document(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path
) -> None:
    operator = CertyneoUploadDocumentOperator(task_id="upload", source=str(pdf_file))
    assert operator.get_openlineage_facets_on_complete(None).inputs == [], "nothing read yet"
    document_id = run(operator, ti_context("upload"))
    result = operator.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in result.inputs] == [("file", str(pdf_file))]
    assert result.outputs == []
    assert result.run_facets["certyneo"].documentIds == [document_id]


def test_download_reports_the_file_it_wrote_and_the_envelope(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, tmp_path: Path
) -> None:
    with CertyneoHook() as hook:
        document = hook.upload_document(pdf_file)
        envelope_id = hook.create_envelope("Contrat", [document["id"]], SIGNER)["id"]
        hook.send_envelope(envelope_id)
    certyneo_emulator.control.sign(envelope_id)
    operator = CertyneoDownloadSignedDocumentOperator(
        task_id="download", envelope_id=envelope_id, destination=f"file://{tmp_path}/out/"
    )
    run(operator, ti_context("download"))
    result = operator.get_openlineage_facets_on_complete(None)
    written = tmp_path / "out" / f"{envelope_id}-signed-document.pdf"
    assert written.exists()
    assert [(d.namespace, d.name) for d in result.outputs] == [("file", str(written))]
    assert result.inputs == []
    assert result.run_facets["certyneo"].envelopeIds == [envelope_id]


def test_the_evidence_archive_reports_each_bundle_it_wrote(make_signed: Any, tmp_path: Path) -> None:
    from airflow_provider_certyneo.operators.evidence import CertyneoArchiveEvidenceOperator

    signed: Signed = make_signed()
    destination = tmp_path / "evidence"

    def archive() -> Any:
        operator = CertyneoArchiveEvidenceOperator(
            task_id="archive_evidence", envelope_ids=[signed.envelope_id], destination=str(destination)
        )
        try:
            operator.execute({})  # it reads nothing of the context
        finally:
            operator.hook.close()
        return operator.get_openlineage_facets_on_complete(None)

    result = archive()
    folder = destination / signed.envelope_id
    names = [f"{signed.envelope_id}-signed-document.pdf", f"{signed.envelope_id}-audit-trail.pdf"]
    expected = {("file", str(folder / name)) for name in [*names, "evidence.json"]}
    assert {(d.namespace, d.name) for d in result.outputs} == expected
    assert all(Path(name).exists() for _, name in expected)
    assert result.run_facets["certyneo"].envelopeIds == [signed.envelope_id]
    again = archive()
    assert again.outputs == [], "a complete bundle is skipped: nothing written"
    assert again.run_facets["certyneo"].envelopeIds == [signed.envelope_id]


def test_bulk_reports_the_manifest_its_pdfs_and_the_envelopes_also_after_resuming(
    certyneo_emulator: CertyneoEmulator, tmp_path: Path
) -> None:
    """A deferred bulk task resumes in a new operator instance: it reads the envelope ids from its rows XCom
    and the PDFs from the manifest again."""
    manifest = write_manifest(tmp_path, 3)
    ti = FakeTaskInstance(task_id="bulk")
    sender = CertyneoBulkSendOperator(task_id="bulk", manifest=str(manifest))
    rows = run(sender, make_context(ti))
    envelope_ids = [r["envelope_id"] for r in rows]
    pdfs = {("file", str(tmp_path / "pdfs" / f"client-{i}.pdf")) for i in range(3)}
    expected_inputs = {("file", str(manifest)), *pdfs}

    sent = sender.get_openlineage_facets_on_complete(None)
    assert {(d.namespace, d.name) for d in sent.inputs} == expected_inputs
    assert sent.run_facets["certyneo"].envelopeIds == envelope_ids

    resumed = CertyneoBulkSendOperator(task_id="bulk", manifest=str(manifest))
    event = {"status": "success", "completed": envelope_ids, "failed": {}, "pending": []}
    run(resumed, make_context(ti), method="execute_complete", event=event)
    after = resumed.get_openlineage_facets_on_complete(None)
    assert {(d.namespace, d.name) for d in after.inputs} == expected_inputs
    assert after.run_facets["certyneo"].envelopeIds == envelope_ids


@pytest.mark.slow
def test_the_operators_import_and_run_without_openlineage(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path
) -> None:
    """In a Python where neither OpenLineage nor its provider can be imported: the operators import and an
    upload runs; asked for lineage anyway, they answer None."""
    script = f"""
import importlib.metadata, importlib_metadata, sys
def absent(name):
    return name.split(".")[0] == "openlineage" or name.startswith("airflow.providers.openlineage")
class Absent:  # neither the modules
    def find_spec(self, name, path=None, target=None):
        if absent(name):
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, Absent())
for module in (importlib.metadata, importlib_metadata):  # nor the distributions (entry points)
    def distributions(*args, _all=module.distributions, **kwargs):
        return [d for d in _all(*args, **kwargs) if "openlineage" not in (d.metadata["Name"] or "")]
    module.distributions = distributions
from airflow_provider_certyneo.operators.bulk import CertyneoBulkSendOperator
from airflow_provider_certyneo.operators.document import CertyneoUploadDocumentOperator
from airflow_provider_certyneo.operators.evidence import CertyneoArchiveEvidenceOperator
from tests.unit.conftest import FakeTaskInstance, make_context, run
operator = CertyneoUploadDocumentOperator(task_id="upload", source={str(pdf_file)!r})
print("uploaded", run(operator, make_context(FakeTaskInstance(task_id="upload"))))
print("loaded", sorted(m for m in sys.modules if "openlineage" in m))
print("lineage", operator.get_openlineage_facets_on_complete(None))
"""
    root = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "AIRFLOW_CONN_CERTYNEO_DEFAULT": certyneo_emulator.connection_json(),
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, cwd=root
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["uploaded"].strip()
    assert lines["lineage"] == "None"
    assert lines["loaded"] == "[]"
    assert certyneo_emulator.control.counters()["documents"] == 1
