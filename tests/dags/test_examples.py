"""Every example DAG parses cleanly without network access, and runs end to end against the emulator."""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path
from typing import Any

import pendulum
import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from tests.support.airflow_runs import EXAMPLES, load, states
from tests.support.manifests import write_manifest
from tests.support.polling import wait_until

APPROVE = "approve"  # the bulk DAG's approval task: dag.test() marks it done (no person answers there)


def test_every_example_parses_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an example DAG touched the network while being parsed")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    bag = DagBag(dag_folder=str(EXAMPLES))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) >= {
        "certyneo_quickstart",
        "certyneo_bulk_mapped",
        "certyneo_bulk_per_contract",
        "certyneo_bulk_operator",
        "certyneo_onboarding",
        "certyneo_taskflow",
    }


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "drop"
    shutil.copytree(EXAMPLES / "files", folder)
    monkeypatch.setenv("CERTYNEO_BULK_MANIFEST", str(folder / "clients.csv"))
    monkeypatch.setenv("CERTYNEO_POLL_INTERVAL", "0.2")
    return folder / "clients.csv"


@pytest.mark.slow
def test_bulk_mapped_sends_in_batches(
    signing_emulator: CertyneoEmulator, manifest: Path, output: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five clients in batches of two: three bulk task instances, each with its own journal, every
    envelope sent once and signed."""
    monkeypatch.setenv("CERTYNEO_BATCH_SIZE", "2")
    run = load("certyneo_bulk_contracts").mapped_dag.test()
    ran = {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}
    assert ran.pop(("fail_if_any_task_failed", -1)) == "skipped"
    assert set(ran.values()) == {"success"}, ran
    assert sorted(m for (task, m) in ran if task == "send_batch") == [0, 1, 2]
    labels = {ti.rendered_map_index for ti in run.get_task_instances() if ti.task_id == "send_batch"}
    assert labels == {"rows 1-2", "rows 3-4", "rows 5-5"}
    assert str(run.state) == "success"
    assert "Signed (5): marie.dubois@example.com" in output()
    sends = signing_emulator.control.counters()["sends"]
    assert len(sends) == 5
    assert set(sends.values()) == {1}
    assert len(list((manifest.parent / ".certyneo").glob("*.journal.jsonl"))) == 3, "a journal per batch"


@pytest.mark.slow
def test_bulk_mapped_declined(signing_emulator: CertyneoEmulator, manifest: Path, output: Any) -> None:
    signing_emulator.control.configure(autoAction="decline", declineReason="Trop cher")
    run = load("certyneo_bulk_contracts").mapped_dag.test()
    tis = run.get_task_instances()
    assert {str(ti.state) for ti in tis if ti.task_id == "send_batch"} == {"failed"}
    assert states(run)["summarize"] == "success"
    assert states(run)["fail_if_any_task_failed"] == "failed"
    assert str(run.state) == "failed", "a run whose contracts failed is not green"
    text = output()
    assert "Not signed: envelope" in text
    assert "reason: Trop cher" in text


@pytest.mark.slow
def test_bulk_mapped_two_thousand_contracts(
    certyneo_emulator: CertyneoEmulator, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first of the month at the users' volume, on a scaled clock (6,000 requests/min): 2,000 rows,
    more than Airflow maps over one per task, go out in 8 batches (the default 250 rows each); each envelope
    is sent once, no 429."""
    certyneo_emulator.control.configure(ratePerMinute=6000, burst=200, autoSignAfter=0.5)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CERTYNEO_DEFAULT",
        certyneo_emulator.connection_json(rate_limit_per_minute=6000, rate_limit_burst=200),
    )
    manifest = write_manifest(tmp_path / "drop", 2000, digits=4, shared_pdf=True)
    monkeypatch.setenv("CERTYNEO_BULK_MANIFEST", str(manifest))
    monkeypatch.setenv("CERTYNEO_POLL_INTERVAL", "0.5")
    run = load("certyneo_bulk_contracts").mapped_dag.test()
    ran = {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}
    assert ran.pop(("fail_if_any_task_failed", -1)) == "skipped"
    assert set(ran.values()) == {"success"}, ran
    assert sum(1 for (task, _) in ran if task == "send_batch") == 8
    counters = certyneo_emulator.control.counters()
    assert counters["rateLimited"] == 0
    assert len(counters["sends"]) == 2000
    assert set(counters["sends"].values()) == {1}, "every envelope sent exactly once"
    # the shared PDF is uploaded once per batch (each batch is its own resumable task): 8, not 2,000
    assert counters["requests"].get("POST /api/v1/documents") == 8, counters["requests"]


@pytest.mark.slow
def test_bulk_per_contract_sends_every_contract_before_anyone_signs(
    certyneo_emulator: CertyneoEmulator, airflow_db: None, manifest: Path, output: Any
) -> None:
    """One task instance per contract: sending does not wait for signers (the waits are their own
    deferred sensors), each distinct PDF is uploaded once, each envelope sent once."""
    rows = manifest.read_text(encoding="utf-8").splitlines()
    header, body = rows[0], rows[1:]
    pdf_column = header.split(",").index("pdf")
    shared = [
        ",".join(
            c if n != pdf_column else ("clients/client-001.pdf" if i < 3 else "clients/client-002.pdf")
            for n, c in enumerate(row.split(","))
        )
        for i, row in enumerate(body)
    ]
    manifest.write_text("\n".join([header, *shared]) + "\n", encoding="utf-8")
    control = certyneo_emulator.control

    def sign_once_all_are_sent() -> None:
        wait_until(lambda: len(control.counters()["sends"]) == 5, timeout=120, interval=0.1, what="5 sends")
        for envelope_id in control.counters()["sends"]:
            control.sign(envelope_id)

    signer = threading.Thread(target=sign_once_all_are_sent, daemon=True)
    signer.start()
    run = load("certyneo_bulk_contracts").per_contract_dag.test()
    signer.join(timeout=5)
    ran = {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}
    assert ran.pop(("fail_if_any_task_failed", -1)) == "skipped"
    assert set(ran.values()) == {"success"}, ran
    assert sum(1 for (task, _) in ran if task == "wait_signed") == 5
    counters = control.counters()
    assert counters["requests"].get("POST /api/v1/documents") == 2, counters["requests"]
    assert len(counters["sends"]) == 5
    assert set(counters["sends"].values()) == {1}
    assert "Signed (5):" in output()


def test_bulk_per_contract_over_the_map_limit_fails_before_any_request(
    certyneo_emulator: CertyneoEmulator, airflow_db: None, manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "3")
    run = load("certyneo_bulk_contracts").per_contract_dag.test()
    result = states(run)
    assert result["read_clients"] == "failed"
    assert {result[t] for t in ("upload", "create", "send", "wait_signed")} == {"upstream_failed"}
    assert str(run.state) == "failed"
    counters = certyneo_emulator.control.counters()
    # only the summary's list request (it runs whatever happened): nothing uploaded, created or sent
    assert list(counters["requests"]) == ["GET /api/v1/envelopes"], counters["requests"]
    assert counters["sends"] == {}
    (ti,) = [ti for ti in run.get_task_instances() if ti.task_id == "read_clients"]
    assert ti.try_number == 1, "refused at once, not retried"


def test_the_map_limit_message_names_the_setting_and_the_ways_out() -> None:
    from airflow_provider_certyneo.bulk.batches import MapLengthError, check_map_length

    check_map_length(1024, limit=1024)
    with pytest.raises(MapLengthError) as raised:
        check_map_length(2000, limit=1024)
    message = str(raised.value)
    for part in (
        "2000 contracts",
        "[core] max_map_length = 1024",
        "certyneo_bulk_mapped",
        "manifest_batches",
        "CertyneoBulkSendOperator",
        "AIRFLOW__CORE__MAX_MAP_LENGTH=2000",
    ):
        assert part in message, (part, message)


def test_bulk_operator_signed(signing_emulator: CertyneoEmulator, manifest: Path, output: Any) -> None:
    """Preview, approval (marked approved: ``dag.test()`` waits for a person forever; the approval itself is
    driven on a real deployment, tests/deployment/test_approval.py), send and wait."""
    run = load("certyneo_bulk_contracts").operator_dag.test(mark_success_pattern=APPROVE)
    assert states(run) == {
        "preview": "success",
        "approve": "success",
        "bulk_send": "success",
        "envelope_ids": "success",
        "summarize": "success",
        "fail_if_any_task_failed": "skipped",
    }
    assert str(run.state) == "success"
    text = output()
    assert "Signed (5):" in text
    assert "- contracts: 5 — 5 to send, 0 already sent by an earlier run, 0 with problems" in text
    assert "The manifest and its PDFs are those the preview saw" in text
    assert list((manifest.parent / ".certyneo").glob("*.journal.jsonl")), (
        "the journal sits beside the manifest"
    )
    assert len(signing_emulator.control.counters()["sends"]) == 5


@pytest.mark.slow
def test_bulk_operator_sends_nothing_when_the_manifest_changed_after_the_preview(
    signing_emulator: CertyneoEmulator, manifest: Path, output: Any
) -> None:
    """The approver approved the preview; a PDF replaced meanwhile (here: while the approval is marked) is
    refused by the send, which makes no request."""
    from airflow.sdk import task

    dag = load("certyneo_bulk_contracts").operator_dag
    pdf = manifest.parent / "clients" / "client-002.pdf"
    assert pdf.exists()

    @task(task_id="change_a_pdf", dag=dag)
    def change_a_pdf() -> None:
        pdf.write_bytes(pdf.read_bytes() + b"\n% changed after the preview\n")

    dag.get_task("preview") >> change_a_pdf() >> dag.get_task("approve")
    run = dag.test(mark_success_pattern=APPROVE)
    result = states(run)
    assert (result["preview"], result["bulk_send"]) == ("success", "failed")
    assert "clients/client-002.pdf changed (" in output()
    counters = signing_emulator.control.counters()
    assert counters["sends"] == {}
    assert counters["documents"] == 0


@pytest.fixture
def new_hires(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    drop = tmp_path / "new-hires"
    drop.mkdir()
    today = pendulum.now("UTC").to_date_string()
    (drop / f"{today}.csv").write_text(
        "name,email,start_date\nLéa Garnier,lea.garnier@example.com,2026-12-01\n"
        "Tom Weber,tom.weber@example.com,2026-12-01\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("CERTYNEO_ONBOARDING_DROP", str(drop))
    monkeypatch.setenv("CERTYNEO_POLL_INTERVAL", "0.2")
    return drop


@pytest.mark.parametrize("logical_date", [True, False], ids=["with_logical_date", "without_logical_date"])
def test_onboarding_signed_in_order_and_archived(
    signing_emulator: CertyneoEmulator, new_hires: Path, archive: Path, logical_date: bool
) -> None:
    """Today's drop is read, and the evidence archived by day, also in a run without a logical date."""
    run = load("certyneo_onboarding").dag.test(logical_date=pendulum.now("UTC") if logical_date else None)
    result = states(run)
    assert result["void_unsigned"] == "success"
    assert result["fail_if_any_task_failed"] == "skipped"
    assert str(run.state) == "success"
    evidence = sorted(archive.rglob("evidence.json"))
    assert len(evidence) == 2
    import json

    record = json.loads(evidence[0].read_text())
    assert [s["email"] for s in record["signers"]][1] == "rh@example.com"
    first, second = (s["signed_at"] for s in record["signers"])
    assert first <= second, "the employee signs before HR"
    assert Path(record["signed_document"]["path"].removeprefix("file://")).exists()
    assert len(record["audit_trail"]["sha256"]) == 64


@pytest.mark.slow
def test_onboarding_voids_what_is_unsigned_at_the_deadline(
    certyneo_emulator: CertyneoEmulator,
    airflow_db: None,
    new_hires: Path,
    archive: Path,
    monkeypatch: pytest.MonkeyPatch,
    output: Any,
) -> None:
    monkeypatch.setenv("CERTYNEO_SIGN_WITHIN_SECONDS", "1.5")
    run = load("certyneo_onboarding").dag.test(logical_date=pendulum.now("UTC"))
    tis = run.get_task_instances()
    assert {str(ti.state) for ti in tis if ti.task_id == "wait_for_signatures"} == {"failed"}
    assert "Voided 2 unsigned envelope(s)" in output()
    assert str(run.state) == "failed"
    assert not list(archive.rglob("*.pdf"))


@pytest.mark.parametrize("logical_date", [True, False], ids=["with_logical_date", "without_logical_date"])
def test_taskflow(signing_emulator: CertyneoEmulator, archive: Path, logical_date: bool) -> None:
    run = (
        load("certyneo_taskflow")
        .certyneo_taskflow()
        .test(logical_date=pendulum.now("UTC") if logical_date else None)
    )
    assert set(states(run).values()) == {"success"}
    assert len(list(archive.rglob("*.pdf"))) == 2


def test_taskflow_declined(signing_emulator: CertyneoEmulator, archive: Path, output: Any) -> None:
    signing_emulator.control.configure(autoAction="decline", declineReason="Pas maintenant")
    run = load("certyneo_taskflow").certyneo_taskflow().test()
    result = states(run)
    assert result["wait_for_signature"] == "failed"
    assert result["archive"] == "upstream_failed"
    assert "reason: Pas maintenant" in output()


@pytest.mark.slow
def test_quickstart_with_the_airflow_cli(signing_emulator: CertyneoEmulator, archive: Path) -> None:
    """`airflow dags test certyneo_quickstart`, the command the README's quick start runs."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "AIRFLOW_CONN_CERTYNEO_DEFAULT": signing_emulator.connection_json()}
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", "certyneo_quickstart"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert len(list(archive.rglob("*-signed-document.pdf"))) == 1
    assert len(list(archive.rglob("*-audit-trail.pdf"))) == 1
