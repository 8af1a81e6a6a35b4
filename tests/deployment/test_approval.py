"""Preview → approval → send in a real deployment (api-server, scheduler, dag-processor, triggerer;
LocalExecutor, SQLite), driven as a person drives it: the ``approve`` task of ``certyneo_bulk_operator``
waits in ``awaiting_input`` (Airflow 3.3: no triggerer, no pool slot), shows the preview's summary, and is
answered through Airflow's human-in-the-loop REST route (``PATCH …/taskInstances/approve/-1/hitlDetails``),
then in the UI's Required actions page in headless Chromium.

A rejected run sends nothing (by the emulator's counters and request log); an approved run sends exactly
the previewed contracts, each once. ``dag.test()`` is no place for this: it waits for a person forever and
a thread answering it from the same process would share its SQLite database."""

from __future__ import annotations

import csv
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_certyneo.emulator.handle import EmulatorControl
from tests.deployment.conftest import BULK_CONTRACTS, ExamplesDeployment
from tests.support.deployment import AirflowStack
from tests.support.polling import wait_until

pytestmark = [
    pytest.mark.deployment,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.timeout(900),
]
DAG_ID = "certyneo_bulk_operator"
CONTRACTS = BULK_CONTRACTS
ARTIFACTS = Path(__file__).parents[1] / "artifacts" / "ui"


@dataclass
class Stack:
    stack: AirflowStack
    emulator: EmulatorControl
    manifest: Path

    def states(self, run_id: str) -> dict[str, str]:
        return {t["task_id"]: str(t["state"]) for t in self.stack.api.task_instances(DAG_ID, run_id)}

    def hitl(self, run_id: str) -> str:
        return f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails"

    def awaiting_approval(self, run_id: str) -> dict[str, Any]:
        """Until ``approve`` waits for a person; its human-in-the-loop detail (subject, body, options)."""
        wait_until(
            lambda: self.states(run_id).get("approve") == "awaiting_input",
            timeout=240,
            interval=1,
            what=f"the approval of {run_id} to await input",
            detail=lambda: f"{self.states(run_id)}\n{self.stack.tail('scheduler')}",
        )
        # a person answers seconds later, never before the scheduler has handled the paused process's exit:
        # an answer that early meets Airflow's upstream deferral race (README, Troubleshooting)
        wait_until(
            lambda: self.stack.exit_handled(DAG_ID, run_id, "approve"),
            timeout=120,
            interval=0.5,
            what=f"the scheduler to handle the exit of the paused approve of {run_id}",
            detail=lambda: self.stack.tail("scheduler"),
        )
        detail: dict[str, Any] = self.stack.api.json("GET", self.hitl(run_id))
        return detail

    def sends_and_mutations(self) -> tuple[dict[str, int], list[str]]:
        mutating = [
            e["route"]
            for e in self.emulator.requests()
            if e["route"].split(" ", 1)[0] in ("POST", "PUT", "PATCH", "DELETE")
        ]
        return self.emulator.counters()["sends"], mutating


@pytest.fixture(scope="module")
def deployment(examples_deployment: ExamplesDeployment) -> Stack:
    """The shared deployment of the examples, signers signing a second after each invitation."""
    examples_deployment.emulator.configure(autoSignAfter=1)
    examples_deployment.stack.api.unpause(DAG_ID)
    return Stack(examples_deployment.stack, examples_deployment.emulator, examples_deployment.manifest)


def test_a_rejected_run_sends_nothing(deployment: Stack) -> None:
    run_id = deployment.stack.api.trigger(DAG_ID)
    detail = deployment.awaiting_approval(run_id)
    assert detail["options"] == ["Approve", "Reject"]
    assert detail["subject"] == f"Send {CONTRACTS} contracts ({3 * CONTRACTS} requests)?"
    assert f"- contracts: {CONTRACTS} — {CONTRACTS} to send, 0 already sent" in detail["body"]
    assert "Fingerprint of what was previewed: sha256 " in detail["body"]
    assert deployment.emulator.counters()["requestsTotal"] == 0, "the preview asked the server nothing"

    answer = deployment.stack.api.json("PATCH", deployment.hitl(run_id), json={"chosen_options": ["Reject"]})
    assert answer["chosen_options"] == ["Reject"]
    assert deployment.stack.api.wait_for_run(DAG_ID, run_id, timeout=240) == "success"
    states = deployment.states(run_id)
    assert (states["preview"], states["approve"], states["bulk_send"]) == ("success", "success", "skipped")
    assert deployment.sends_and_mutations() == ({}, []), "a rejected run sends and changes nothing"
    assert deployment.emulator.counters()["requestsTotal"] == 0


def assert_sent_as_previewed(deployment: Stack, run_id: str) -> None:
    """The approved run sent the previewed contracts, no more, no fewer, each once (by the server)."""
    states = deployment.states(run_id)
    assert states["bulk_send"] == "success"
    assert states["fail_if_any_task_failed"] == "skipped"
    with deployment.manifest.open(encoding="utf-8") as handle:
        previewed = sorted(row["subject"] for row in csv.DictReader(handle))
    results = deployment.stack.api.json(
        "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/bulk_send/xcomEntries/results"
    )["value"]
    sends = deployment.emulator.counters()["sends"]
    assert [sends.get(r["envelope_id"]) for r in results] == [1] * CONTRACTS, sends
    sent = sorted(deployment.emulator.envelope(r["envelope_id"])["subject"] for r in results)
    assert sent == previewed


@pytest.mark.ui
@pytest.mark.parametrize(("choice", "send_state"), [("Approve", "success"), ("Reject", "skipped")])
def test_a_person_answers_in_the_browser(deployment: Stack, choice: str, send_state: str) -> None:
    """The Required actions page of the waiting approval shows the preview's summary; clicking Approve
    runs the send of exactly the previewed contracts, clicking Reject skips it and nothing is sent."""
    from playwright.sync_api import expect, sync_playwright

    from tests.deployment.test_ui import CHROMIUM_ARGS, chromium

    executable = chromium()
    before = len(deployment.emulator.counters()["sends"])
    run_id = deployment.stack.api.trigger(DAG_ID)
    deployment.awaiting_approval(run_id)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = deployment.stack.base_url
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        token = deployment.stack.api._headers()["Authorization"].removeprefix("Bearer ")
        context.add_cookies([{"name": "_token", "value": token, "url": base}])
        page = context.new_page()
        page.goto(f"{base}/dags/{DAG_ID}/runs/{run_id}/tasks/approve/required_actions")
        expect(page.get_by_text(f"Send {CONTRACTS} contracts").first).to_be_visible(timeout=60_000)
        expect(page.get_by_text(re.compile("Bulk send preview of")).first).to_be_visible(timeout=30_000)
        if choice == "Approve":
            page.screenshot(path=str(ARTIFACTS / "7-bulk-approval.png"), full_page=True)
        page.get_by_role("button", name=choice, exact=True).first.click()
        wait_until(
            lambda: deployment.states(run_id).get("approve") not in ("awaiting_input", None),
            timeout=60,
            interval=1,
            what="the click to answer the approval",
        )
        page.screenshot(path=str(ARTIFACTS / f"8-bulk-{choice.lower()}d.png"), full_page=True)
        browser.close()
    assert deployment.stack.api.wait_for_run(DAG_ID, run_id, timeout=300) == "success"
    assert deployment.states(run_id)["bulk_send"] == send_state
    detail = deployment.stack.api.json("GET", deployment.hitl(run_id))
    assert detail["chosen_options"] == [choice]
    sends = deployment.emulator.counters()["sends"]
    # each approved run sends the same manifest's contracts (envelopes are new each run): once each
    assert len(sends) == before + (CONTRACTS if choice == "Approve" else 0), "a rejected run sends nothing"
    assert set(sends.values()) <= {1}
    if choice == "Approve":
        assert_sent_as_previewed(deployment, run_id)
    print(f"browser {choice.lower()}: {time.monotonic() - started:.0f} s")
