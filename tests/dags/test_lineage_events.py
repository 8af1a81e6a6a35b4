"""OpenLineage on real `airflow dags test` runs: with the OpenLineage provider and its file transport, the
COMPLETE events of the Certyneo tasks carry the PDFs and manifest read, the files archived and the ids."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from tests.support.airflow_runs import EXAMPLES

pytest.importorskip("airflow.providers.openlineage")


def run_with_lineage(dag_id: str, events: Path, *args: str, **env: str) -> dict[str, dict[str, Any]]:
    """`airflow dags test <dag_id>` with the file transport; the COMPLETE event of each task, by task id."""
    environment = {
        **os.environ,
        **env,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "certyneo-tests",
    }
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", dag_id, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert events.exists(), "no OpenLineage event was written: " + result.stderr[-3000:]
    complete: dict[str, dict[str, Any]] = {}
    for line in events.read_text().splitlines():
        event = json.loads(line)
        if event.get("eventType") == "COMPLETE" and event["job"]["name"].startswith(f"{dag_id}."):
            complete[event["job"]["name"].removeprefix(f"{dag_id}.")] = event
    return complete


def datasets(event: dict[str, Any], side: str) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in event[side]}


def certyneo_facet(event: dict[str, Any]) -> dict[str, Any]:
    facet: dict[str, Any] = event["run"]["facets"]["certyneo"]
    return facet


@pytest.mark.slow
def test_the_quickstart_reports_the_pdf_it_read_and_the_files_it_archived(
    signing_emulator: CertyneoEmulator, archive: Path, tmp_path: Path
) -> None:
    env = {"AIRFLOW_CONN_CERTYNEO_DEFAULT": signing_emulator.connection_json()}
    events = run_with_lineage("certyneo_quickstart", tmp_path / "lineage.jsonl", **env)
    assert {"upload", "archive_signed_pdf", "archive_audit_trail"} <= set(events), sorted(events)

    pdf = (EXAMPLES / "files" / "contrat-de-prestation.pdf").resolve()
    upload = events["upload"]
    assert datasets(upload, "inputs") == {("file", str(pdf))}
    assert datasets(upload, "outputs") == set()
    document_ids = certyneo_facet(upload)["documentIds"]
    assert len(document_ids) == 1
    assert document_ids[0].strip()

    signed = next(archive.rglob("*-signed-document.pdf"))
    trail = next(archive.rglob("*-audit-trail.pdf"))
    envelope_id = signed.name.removesuffix("-signed-document.pdf")
    assert datasets(events["archive_signed_pdf"], "outputs") == {("file", str(signed))}
    assert datasets(events["archive_audit_trail"], "outputs") == {("file", str(trail))}
    for task in ("archive_signed_pdf", "archive_audit_trail"):
        assert certyneo_facet(events[task])["envelopeIds"] == [envelope_id]


@pytest.mark.slow
def test_the_bulk_operator_reports_the_manifest_its_pdfs_and_the_envelopes(
    signing_emulator: CertyneoEmulator, tmp_path: Path
) -> None:
    """Preview, approval (marked done), send and deferred wait: the send resumes in a new instance after its
    wait, and still reports the manifest, its five PDFs and its five envelopes."""
    drop = tmp_path / "drop"
    shutil.copytree(EXAMPLES / "files", drop)
    manifest = drop / "clients.csv"
    env = {
        "AIRFLOW_CONN_CERTYNEO_DEFAULT": signing_emulator.connection_json(),
        "CERTYNEO_BULK_MANIFEST": str(manifest),
        "CERTYNEO_POLL_INTERVAL": "0.2",
    }
    events = run_with_lineage(
        "certyneo_bulk_operator", tmp_path / "lineage.jsonl", "--mark-success-pattern", "approve", **env
    )
    assert {"preview", "bulk_send"} <= set(events), sorted(events)

    pdfs = {("file", str(p)) for p in sorted((drop / "clients").glob("*.pdf"))}
    assert len(pdfs) == 5
    for task in ("preview", "bulk_send"):
        assert datasets(events[task], "inputs") == {("file", str(manifest)), *pdfs}, task
    envelope_ids = certyneo_facet(events["bulk_send"])["envelopeIds"]
    assert len(set(envelope_ids)) == 5
    assert set(envelope_ids) == set(signing_emulator.control.counters()["sends"])
    assert "certyneo" not in events["preview"]["run"]["facets"], "a preview sends no envelope"
