"""Operators inside real DAG runs (dag.test(), SQLite): retries that must not resend, bad input that must
fail at once, the sensor in its three modes, the void operator, links and map indexes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook
from airflow_provider_certyneo.links.envelope import CertyneoEnvelopeLink
from airflow_provider_certyneo.operators.document import CertyneoUploadDocumentOperator
from airflow_provider_certyneo.operators.envelope import (
    CertyneoCreateEnvelopeOperator,
    CertyneoSendEnvelopeOperator,
    CertyneoVoidEnvelopeOperator,
)
from airflow_provider_certyneo.sensors.envelope import CertyneoEnvelopeSensor
from tests.support.airflow_runs import run_dag

# built, not written: DAG files are stored in the database test_secrets searches for sign URLs
SIGN_PATH = "/".join(["", "sign", ""])
START = pendulum.datetime(2026, 1, 1, tz="UTC")
SIGNER = [{"email": "marie@example.com", "name": "Marie Dubois"}]


def run_tasks(dag: DAG) -> dict[str, Any]:
    run = run_dag(dag)
    return {ti.task_id: ti for ti in run.get_task_instances()}


def draft(pdf_file: Path) -> str:
    with CertyneoHook() as hook:
        document = hook.upload_document(pdf_file)
        return hook.create_envelope("Contrat", [document["id"]], SIGNER)["id"]


def test_lost_send_answer_is_retried_by_the_task_and_sent_once(
    signing_emulator: CertyneoEmulator, pdf_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    envelope_id = draft(pdf_file)
    monkeypatch.setenv("AIRFLOW_CONN_CERTYNEO_NORETRY", signing_emulator.connection_json(max_retries=0))
    signing_emulator.control.set_faults({"action": "lost", "method": "POST", "path": "/send$", "times": 1})
    with DAG("send_lost", schedule=None, start_date=START) as dag:
        CertyneoSendEnvelopeOperator(
            task_id="send",
            envelope_id=envelope_id,
            certyneo_conn_id="certyneo_noretry",
            retries=2,
            retry_delay=timedelta(seconds=0),
        )
    tis = run_tasks(dag)
    assert str(tis["send"].state) == "success"
    assert tis["send"].try_number == 2
    assert signing_emulator.control.counters()["sends"] == {envelope_id: 1}
    assert signing_emulator.control.counters()["requests"]["POST /api/v1/envelopes/{id}/send"] == 2


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("docx", "is not a PDF"),
        ("large", "30.0 MiB"),
        ("bad_email", "recipients[0].email 'marie@@example' is not a valid e-mail address"),
        ("no_signer", "recipients has no SIGNER"),
        ("unknown_envelope", "envelope 'env_doesnotexist' does not exist"),
    ],
)
def test_bad_input_fails_at_once(
    signing_emulator: CertyneoEmulator,
    pdf_file: Path,
    tmp_path: Path,
    case: str,
    fragment: str,
    output: Any,
) -> None:
    retry: dict[str, Any] = {"retries": 3, "retry_delay": timedelta(seconds=0)}
    with DAG(f"bad_{case}", schedule=None, start_date=START) as dag:
        if case == "docx":
            docx = tmp_path / "contract.pdf"
            docx.write_bytes(b"PK\x03\x04[Content_Types].xml word/document.xml")
            CertyneoUploadDocumentOperator(task_id="task", source=str(docx), **retry)
        elif case == "large":
            large = tmp_path / "large.pdf"
            with large.open("wb") as handle:
                handle.write(b"%PDF-1.7\n")
                handle.truncate(30 * 1024 * 1024)
            CertyneoUploadDocumentOperator(task_id="task", source=str(large), **retry)
        elif case in ("bad_email", "no_signer"):
            recipients = (
                [{"email": "marie@@example", "name": "M"}]
                if case == "bad_email"
                else [{"email": "cc@example.com", "name": "C", "role": "CC"}]
            )
            CertyneoCreateEnvelopeOperator(
                task_id="task", subject="S", document_ids=["doc_1"], recipients=recipients, **retry
            )
        else:
            CertyneoSendEnvelopeOperator(task_id="task", envelope_id="env_doesnotexist", **retry)
    tis = run_tasks(dag)
    assert str(tis["task"].state) == "failed"
    assert tis["task"].try_number == 1, "no retry may be spent on bad input"
    assert fragment in output()
    requests = signing_emulator.control.counters()["requests"]
    assert sum(requests.values()) == (1 if case == "unknown_envelope" else 0)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_sensor_modes(signing_emulator: CertyneoEmulator, pdf_file: Path, mode: str, output: Any) -> None:
    signing_emulator.control.configure(autoSignAfter=5)  # many pokes while pending
    envelope_id = draft(pdf_file)
    with CertyneoHook() as hook:
        hook.send_envelope(envelope_id)
    with DAG(f"sensor_{mode}", schedule=None, start_date=START) as dag:
        CertyneoEnvelopeSensor(
            task_id="wait",
            envelope_id=envelope_id,
            poke_interval=0.2,
            timeout=60,
            mode="reschedule" if mode == "reschedule" else "poke",
            deferrable=mode == "deferrable",
        )
    tis = run_tasks(dag)
    assert str(tis["wait"].state) == "success"
    logged = output()
    lines = [line for line in (x for x in logged.splitlines() if f"envelope {envelope_id}: " in x)]
    progress = [line[line.index(f"envelope {envelope_id}: ") :].split(" [")[0] for line in lines]
    # one line per change, whatever the number of pokes: waiting (unless the task started late), then signed
    assert 1 <= len(progress) == len(set(progress)) <= 2, progress
    if len(progress) == 2:
        assert (
            "0 of 1 signed; waiting for Marie Dubois <marie@example.com> (parallel, sent since" in progress[0]
        )
    assert "1 of 1 signed: Marie Dubois signed at" in progress[-1]


@pytest.mark.slow
def test_the_send_operators_synchronous_wait_logs_one_line_per_change(
    signing_emulator: CertyneoEmulator, pdf_file: Path, output: Any
) -> None:
    """``deferrable=False``: the send operator waits in the worker. Two sequential signers sign one by one,
    each once the server has counted two more polls (the wait has seen the envelope as it is): three lines,
    one per change, however many polls."""
    import threading

    from tests.support.polling import wait_until
    from tests.triggers.test_progress import TWO

    signing_emulator.control.configure(autoSignAfter=None)
    with CertyneoHook() as hook:
        document = hook.upload_document(pdf_file)["id"]
        envelope_id = hook.create_envelope("Contrat", [document], TWO, signing_order="SEQUENTIAL")["id"]
    control = signing_emulator.control

    def polls() -> int:
        return int(control.counters()["requests"].get("GET /api/v1/envelopes", 0))

    def sign_one_by_one() -> None:
        for email in ("marie@example.com", "rh@example.com"):
            start = polls()
            wait_until(lambda s=start: polls() >= s + 2, timeout=30, what="two more polls")  # type: ignore[misc]
            control.sign(envelope_id, email)

    with DAG("send_sync_wait", schedule=None, start_date=START) as dag:
        CertyneoSendEnvelopeOperator(
            task_id="send",
            envelope_id=envelope_id,
            wait_for_completion=True,
            deferrable=False,
            poll_interval=0.2,
            timeout=60,
        )
    signer = threading.Thread(target=sign_one_by_one, daemon=True)
    signer.start()
    tis = run_tasks(dag)
    signer.join(timeout=30)
    assert str(tis["send"].state) == "success"
    assert polls() >= 4, "the wait polled more than once per change"
    logged = output()
    progress = [
        line[line.index(f"envelope {envelope_id}: ") :].split(" [")[0]
        for line in logged.splitlines()
        if f"envelope {envelope_id}: " in line and " of 2 signed" in line
    ]
    unique = progress
    starts = [
        "0 of 2 signed; waiting for Marie Dubois <marie@example.com> (sequential, their turn since",
        "1 of 2 signed: Marie Dubois signed at",
        "2 of 2 signed: Marie Dubois signed at",
    ]
    assert len(unique) == len(starts), unique
    for line, start in zip(unique, starts, strict=True):
        assert line.startswith(f"envelope {envelope_id}: {start}"), line
    assert "completed at" in unique[-1]


def test_sensor_fails_at_once_on_decline(
    signing_emulator: CertyneoEmulator, pdf_file: Path, output: Any
) -> None:
    signing_emulator.control.configure(autoSignAfter=None)
    envelope_id = draft(pdf_file)
    with CertyneoHook() as hook:
        hook.send_envelope(envelope_id)
    signing_emulator.control.decline(envelope_id, "Pas d'accord")
    with DAG("sensor_declined", schedule=None, start_date=START) as dag:
        CertyneoEnvelopeSensor(
            task_id="wait",
            envelope_id=envelope_id,
            poke_interval=0.2,
            retries=3,
            retry_delay=timedelta(seconds=0),
        )
    tis = run_tasks(dag)
    assert str(tis["wait"].state) == "failed"
    assert tis["wait"].try_number == 1
    assert "declined by Marie Dubois <marie@example.com>, reason: Pas d'accord" in output()


def test_deferred_wait_times_out_and_voids(
    signing_emulator: CertyneoEmulator, pdf_file: Path, output: Any
) -> None:
    signing_emulator.control.configure(autoSignAfter=None)
    envelope_id = draft(pdf_file)
    with DAG("send_timeout", schedule=None, start_date=START) as dag:
        CertyneoSendEnvelopeOperator(
            task_id="send",
            envelope_id=envelope_id,
            wait_for_completion=True,
            deferrable=True,
            poll_interval=0.2,
            timeout=1.0,
            void_on_timeout=True,
        )
    tis = run_tasks(dag)
    assert str(tis["send"].state) == "failed"
    assert "timed out waiting for signatures" in output()
    assert signing_emulator.control.envelope(envelope_id)["status"] == "VOIDED"


def test_execution_timeout_is_carried_into_the_trigger(
    signing_emulator: CertyneoEmulator, pdf_file: Path
) -> None:
    signing_emulator.control.configure(autoSignAfter=None)
    envelope_id = draft(pdf_file)
    with DAG("send_exec_timeout", schedule=None, start_date=START) as dag:
        CertyneoSendEnvelopeOperator(
            task_id="send",
            envelope_id=envelope_id,
            wait_for_completion=True,
            deferrable=True,
            poll_interval=0.2,
            timeout=None,
            execution_timeout=timedelta(seconds=2),
        )
    tis = run_tasks(dag)
    assert str(tis["send"].state) == "failed"
    assert signing_emulator.control.envelope(envelope_id)["status"] == "SENT"


def test_void_operator_cleans_up(signing_emulator: CertyneoEmulator, pdf_file: Path) -> None:
    signing_emulator.control.configure(autoSignAfter=None)
    sent, kept_draft = draft(pdf_file), draft(pdf_file)
    with CertyneoHook() as hook:
        hook.send_envelope(sent)
    with DAG("void", schedule=None, start_date=START) as dag:
        CertyneoVoidEnvelopeOperator(task_id="void_sent", envelope_id=sent)
        CertyneoVoidEnvelopeOperator(task_id="delete_draft", envelope_id=kept_draft)
        CertyneoVoidEnvelopeOperator(task_id="missing", envelope_id="env_gone")
    tis = run_tasks(dag)
    assert {k: ti.xcom_pull(task_ids=k) for k, ti in tis.items()} == {
        "void_sent": {"envelope_id": sent, "status": "VOIDED"},
        "delete_draft": {"envelope_id": kept_draft, "status": "DELETED"},
        "missing": {"envelope_id": "env_gone", "status": "MISSING"},
    }


def test_mapped_sends_are_labelled_and_linked(signing_emulator: CertyneoEmulator, pdf_file: Path) -> None:
    ids = [draft(pdf_file) for _ in range(2)]
    with DAG("mapped", schedule=None, start_date=START) as dag:
        CertyneoSendEnvelopeOperator.partial(task_id="send").expand(envelope_id=ids)
    run = run_dag(dag)
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = list(
            session.scalars(
                select(TaskInstance).where(TaskInstance.run_id == run.run_id).order_by(TaskInstance.map_index)
            )
        )
        session.expunge_all()
    assert [str(ti.state) for ti in tis] == ["success", "success"]
    assert [ti.rendered_map_index for ti in tis] == ["Contrat → marie@example.com"] * 2
    urls = [
        ti.xcom_pull(task_ids="send", key="certyneo_envelope_url", map_indexes=ti.map_index) for ti in tis
    ]
    assert urls == [f"{signing_emulator.base_url}/app/envelopes/{i}" for i in ids]


def test_dashboard_template_link_before_the_wait_and_sign_urls_only_when_asked(
    signing_emulator: CertyneoEmulator,
    pdf_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    template = "https://dash.example.com/e/{envelope_id}?from={base_url}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_CERTYNEO_DEFAULT", signing_emulator.connection_json(dashboard_url_template=template)
    )
    envelope_id = draft(pdf_file)
    with DAG("links", schedule=None, start_date=START) as dag:
        CertyneoSendEnvelopeOperator(
            task_id="send",
            envelope_id=envelope_id,
            wait_for_completion=True,
            deferrable=True,
            poll_interval=0.2,
        )
    ti = run_tasks(dag)["send"]
    assert str(ti.state) == "success"
    expected = template.format(envelope_id=envelope_id, base_url=signing_emulator.base_url)
    # the link's own XCom, which the UI reads, is pushed before the task defers
    assert ti.xcom_pull(task_ids="send", key=CertyneoEnvelopeLink().xcom_key) == expected
    result = ti.xcom_pull(task_ids="send")
    assert result["recipients"][0]["status"] == "SIGNED"
    assert SIGN_PATH not in str(result["recipients"])
    assert "sign_urls" not in result
    # asked for (return_sign_urls=True), a run of its own writes them to its XCom; test_secrets searches
    # only its own runs' rows, so this run's bearer links are no other test's leak
    asked_id = draft(pdf_file)
    with DAG("links_asked", schedule=None, start_date=START) as asked_dag:
        CertyneoSendEnvelopeOperator(
            task_id="send",
            envelope_id=asked_id,
            wait_for_completion=True,
            deferrable=True,
            poll_interval=0.2,
            return_sign_urls=True,
        )
    asked = run_dag(asked_dag)
    asked_xcom, plain_xcom = xcom_text(asked.dag_id, asked.run_id), xcom_text(ti.dag_id, ti.run_id)
    assert f"{signing_emulator.base_url}{SIGN_PATH}" in asked_xcom, "asked for: the run's XCom has them"
    assert asked_id in asked_xcom
    assert envelope_id in plain_xcom, "the first run's XCom was read"
    assert SIGN_PATH not in plain_xcom, "not asked for: the run's XCom has no sign URL"


def xcom_text(dag_id: str, run_id: str) -> str:
    """Every XCom row of one DAG run, as text (what the database holds)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(XComModel.key, XComModel.value).where(
            XComModel.dag_id == dag_id, XComModel.run_id == run_id
        )
        return "\n".join(f"{key}: {value!r}" for key, value in session.execute(query))


@pytest.mark.slow
def test_mapped_waits_keep_their_label_after_deferral(
    signing_emulator: CertyneoEmulator, pdf_file: Path
) -> None:
    """Airflow renders the label when the task finishes, in the resumed process: the label set before
    deferring must be set again in execute_complete (send operator and sensor alike)."""
    ids = [draft(pdf_file) for _ in range(2)]
    with DAG("mapped_deferred", schedule=None, start_date=START) as dag:
        sent = CertyneoSendEnvelopeOperator.partial(
            task_id="send", wait_for_completion=True, deferrable=True, poll_interval=0.2
        ).expand(envelope_id=ids)
        waited = CertyneoEnvelopeSensor.partial(task_id="wait", deferrable=True, poke_interval=0.2).expand(
            envelope_id=ids
        )
        sent >> waited
    signing_emulator.control.configure(autoSignAfter=1.0)
    run = run_dag(dag)
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = list(session.scalars(select(TaskInstance).where(TaskInstance.run_id == run.run_id)))
        session.expunge_all()
    assert {(ti.task_id, str(ti.state)) for ti in tis} == {("send", "success"), ("wait", "success")}
    assert [ti.rendered_map_index for ti in tis] == ["Contrat → marie@example.com"] * 4
