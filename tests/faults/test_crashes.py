"""Crashes in whole DAG runs: a worker killed in the middle of a task (then the task retried), and the
Certyneo service killed and restarted while a deferred task waits. Invariants from the emulator's counters:
every contract sent exactly once, no draft left over, every task succeeded."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_certyneo.emulator.handle import EmulatorControl, connection_json
from airflow_provider_certyneo.emulator.models import new_key_secret
from airflow_provider_certyneo.emulator.pdf import text_pdf
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.emulator.server import EmulatorProcess
from airflow_provider_certyneo.operators.document import (
    CertyneoDownloadSignedDocumentOperator,
    CertyneoUploadDocumentOperator,
)
from airflow_provider_certyneo.operators.envelope import (
    CertyneoCreateEnvelopeOperator,
    CertyneoSendEnvelopeOperator,
)
from tests.faults.conftest import Report
from tests.support.airflow_runs import continue_run, fail_lost_worker, run_dag
from tests.support.polling import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.serial, pytest.mark.slow]  # timing-sensitive: not in parallel
RUN_DATE = pendulum.datetime(2026, 3, 1, tz="UTC")
FAST: dict[str, Any] = {"backoff_base": 0.02, "backoff_cap": 0.2, "max_retries": 6}
REPO = Path(__file__).resolve().parents[2]


def signing_dag(dag_id: str, folder: Path, deferrable: bool) -> DAG:
    """The quick start's shape: upload, create, send and wait for the signature, download the signed PDF."""
    pdf = folder / "contract.pdf"
    if not pdf.exists():
        pdf.write_bytes(text_pdf("Contrat de prestation", ["Article 1"]))
    defaults: dict[str, Any] = {"retries": 2, "retry_delay": timedelta(seconds=0)}
    with DAG(dag_id, schedule=None, start_date=RUN_DATE, default_args=defaults) as dag:
        upload = CertyneoUploadDocumentOperator(task_id="upload", source=str(pdf))
        create = CertyneoCreateEnvelopeOperator(
            task_id="create",
            subject="Contrat de prestation",
            document_ids=upload.output,
            recipients=[{"email": "marie@example.com", "name": "Marie Dubois"}],
        )
        send = CertyneoSendEnvelopeOperator(
            task_id="send",
            envelope_id=create.output,
            wait_for_completion=True,
            deferrable=deferrable,
            poll_interval=0.3,
            timeout=timedelta(minutes=2),
        )
        download = CertyneoDownloadSignedDocumentOperator(
            task_id="download", envelope_id=create.output, destination=f"{folder}/signed/"
        )
        send >> download
    return dag


def states(run: Any) -> dict[str, tuple[str, int]]:
    return {ti.task_id: (str(ti.state), ti.try_number) for ti in run.get_task_instances()}


def summary(tasks: dict[str, tuple[str, int]]) -> str:
    return ",".join(f"{task}:{state}/try{tries}" for task, (state, tries) in tasks.items())


WORKER = """
import sys
from pathlib import Path
from tests.faults.test_crashes import RUN_DATE, signing_dag
from tests.support.airflow_runs import run_dag
run_dag(signing_dag(sys.argv[1], Path(sys.argv[2]), deferrable=False), RUN_DATE)
"""


def polls(counters: dict[str, Any]) -> int:
    """How many times the waits have asked the list endpoint what changed."""
    return int(counters["requests"].get("GET /api/v1/envelopes", 0))


class Signer(threading.Thread):
    """Marie signs once the retried run waits for her: the envelope is sent and a wait polled after
    ``polls_before``. Nothing signs before, so the worker cannot finish the wait before the kill."""

    def __init__(self, control: EmulatorControl, polls_before: int) -> None:
        super().__init__(daemon=True)
        self.control, self.polls_before = control, polls_before
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            until(
                lambda: bool((c := self.control.counters())["sends"]) and polls(c) > self.polls_before,
                "the retried run waits for the signature",
            )
            (envelope_id,) = self.control.counters()["sends"]
            self.control.sign(envelope_id)
        except (AssertionError, RuntimeError, OSError, ValueError) as exc:
            self.error = exc


def until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    wait_until(condition, timeout=timeout, interval=0.05, what=what)


# Killed waiting for the answer to send: for real, in tests/deployment/test_real_deployment.py (the
# scheduler's own heartbeat check fails the try there; here fail_lost_worker stands in for the scheduler).
@pytest.mark.parametrize(
    ("moment", "fault", "killed_when"),
    [
        (
            "waiting for the answer to upload (the document exists)",
            {"action": "slow_answer", "method": "POST", "path": "^/api/v1/documents$", "seconds": 20},
            lambda c: c["documents"] >= 1,
        ),
        (
            "waiting for the answer to create (the draft exists)",
            {"action": "slow_answer", "method": "POST", "path": "^/api/v1/envelopes$", "seconds": 20},
            lambda c: c["envelopes"] >= 1,
        ),
        (
            "waiting for the signature, on the worker",
            None,
            lambda c: len(c["sends"]) >= 1 and polls(c) >= 1,
        ),
    ],
)
def test_worker_killed_mid_task_then_retried(
    certyneo_emulator: CertyneoEmulator,
    airflow_db: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    report: Report,
    moment: str,
    fault: dict[str, Any] | None,
    killed_when: Callable[[dict[str, Any]], bool],
) -> None:
    """SIGKILL on the process running the task, at a moment the client cannot know what the server did;
    the scheduler fails the task instance (no heartbeat) and the retry finishes the run."""
    control = certyneo_emulator.control
    if fault:
        control.set_faults({**fault, "times": 1})
    monkeypatch.setenv("AIRFLOW_CONN_CERTYNEO_DEFAULT", certyneo_emulator.connection_json(**FAST))
    dag_id = f"killed_{tmp_path.name[-24:]}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, dag_id, str(tmp_path)], env=env, cwd=REPO, stdout=subprocess.DEVNULL
    )
    try:
        until(lambda: worker.poll() is not None or killed_when(control.counters()), "the moment to kill")
        assert worker.poll() is None, "the worker finished before it could be killed"
        worker.kill()
    finally:
        worker.kill()
        worker.wait()
    lost = fail_lost_worker(dag_id)
    signer = Signer(control, polls(control.counters()))
    signer.start()
    run = continue_run(signing_dag(dag_id, tmp_path, deferrable=False), RUN_DATE)
    signer.join(timeout=5)
    assert signer.error is None, signer.error
    counters = control.counters()
    tasks = states(run)
    report(
        f"worker killed {moment}, task retried",
        contracts=1,
        sent=len(counters["sends"]),
        duplicates=sum(n - 1 for n in counters["sends"].values()),
        failed=f"[{','.join(lost)} try 1: worker killed, no heartbeat]",
        documents=counters["documents"],
        envelopes=counters["envelopes"],
        tasks=summary(tasks),
    )
    assert len(lost) == 1
    assert tasks[lost[0]] == ("success", 2), tasks
    assert all(state == "success" for state, _ in tasks.values()), tasks
    assert counters["documents"] == 1, "the retry uploaded the file again"
    assert counters["envelopes"] == 1, "the retry made a second draft"
    assert list(counters["sends"].values()) == [1]
    assert (tmp_path / "signed").exists()


def test_service_restarted_while_a_trigger_waits(
    airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, report: Report
) -> None:
    """Certyneo crashes (SIGKILL) and comes back 3 s later with its data, while the send task is deferred:
    the trigger rides out the refused connections and the run finishes, nothing sent twice."""
    key = new_key_secret("test")
    service = EmulatorProcess(key, per_minute=60_000, state_file=str(tmp_path / "certyneo.state")).start()
    monkeypatch.setenv("AIRFLOW_CONN_CERTYNEO_DEFAULT", connection_json(service.base_url, key, **FAST))
    control = EmulatorControl(service.base_url)
    outage: dict[str, Any] = {}

    def crash_and_restart() -> None:
        try:
            until(
                lambda: (
                    bool(control.counters()["sends"])
                    and control.counters()["requests"].get("GET /api/v1/envelopes", 0) >= 1
                ),
                "the trigger is waiting",
            )
            (envelope_id,) = control.counters()["sends"]
            service.kill()
            down = time.monotonic()
            time.sleep(3)
            service.start()
            outage["seconds"] = time.monotonic() - down
            until(
                lambda: control.counters()["requests"].get("GET /api/v1/envelopes", 0) >= 1,
                "the trigger polls the restarted service",
            )
            control.sign(envelope_id)
        except (AssertionError, RuntimeError, OSError) as exc:
            outage["error"] = exc

    helper = threading.Thread(target=crash_and_restart, daemon=True)
    helper.start()
    try:
        run = run_dag(signing_dag(f"restart_{tmp_path.name[-24:]}", tmp_path, deferrable=True))
        helper.join(timeout=60)
        counters = control.counters()
    finally:
        control.close()
        service.stop()
    assert "error" not in outage, outage.get("error")
    tasks = states(run)
    report(
        "Certyneo killed and restarted with its data while a trigger waited",
        contracts=1,
        sent=len(counters["sends"]),
        duplicates=sum(n - 1 for n in counters["sends"].values()),
        down=f"{outage['seconds']:.1f}s",
        envelopes=counters["envelopes"],
        tasks=summary(tasks),
    )
    assert all(state == "success" and tries == 1 for state, tries in tasks.values()), tasks
    assert list(counters["sends"].values()) == [1]
    assert counters["envelopes"] == 1
