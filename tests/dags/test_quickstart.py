"""The quick-start DAG, run for real with dag.test() (SQLite, the trigger inline) against the emulator."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pendulum
import pypdf
import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from tests.support.airflow_runs import EXAMPLES, load, states

pytestmark = pytest.mark.smoke


@pytest.mark.parametrize("logical_date", [True, False], ids=["with_logical_date", "without_logical_date"])
def test_quickstart_signs_and_archives(
    signing_emulator: CertyneoEmulator, archive: Path, output: Any, logical_date: bool
) -> None:
    """Also without a logical date, as the REST API and `airflow dags trigger` run it: the archive folder
    is the run's day either way."""
    dag = load("certyneo_quickstart").dag
    moment = pendulum.now("UTC")
    run = dag.test(logical_date=moment if logical_date else None)
    assert (run.logical_date is None) is not logical_date
    assert states(run) == dict.fromkeys(
        ["upload", "create", "send_and_wait", "archive_signed_pdf", "archive_audit_trail"], "success"
    )
    assert [p.name for p in archive.iterdir()] == [(run.logical_date or run.run_after).strftime("%Y-%m-%d")]
    output = output()
    assert "[DAG TEST] running trigger in line" in output
    assert "[DAG TEST] Trigger completed" in output
    (signed,) = archive.rglob("*-signed-document.pdf")
    (trail,) = archive.rglob("*-audit-trail.pdf")
    reader = pypdf.PdfReader(io.BytesIO(signed.read_bytes()))
    assert "Marie Dubois" in reader.pages[-1].extract_text()
    assert hashlib.sha256(
        (EXAMPLES / "files" / "contrat-de-prestation.pdf").read_bytes()
    ).hexdigest() in "".join(
        p.extract_text() for p in pypdf.PdfReader(io.BytesIO(trail.read_bytes())).pages
    ).replace("\n", "")
    counters = signing_emulator.control.counters()
    assert list(counters["sends"].values()) == [1]


def test_quickstart_declined_fails_the_wait_naming_signer(
    signing_emulator: CertyneoEmulator, archive: Path, output: Any
) -> None:
    signing_emulator.control.configure(autoAction="decline", declineReason="Le prix a change")
    run = load("certyneo_quickstart").dag.test()
    result = states(run)
    assert result["send_and_wait"] == "failed"
    assert result["archive_signed_pdf"] == "upstream_failed"
    output = output()
    assert "declined by Marie Dubois <client@example.com>, reason: Le prix a change" in output
    assert not archive.exists() or not list(archive.rglob("*.pdf"))
