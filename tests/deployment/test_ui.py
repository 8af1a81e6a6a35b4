"""The Airflow UI as ops use it, in headless Chromium (Debian's package, driven by Playwright through
``executable_path``; nothing downloads a browser), on a real deployment (api-server, scheduler,
dag-processor, triggerer) running the example DAGs against the emulator.

It opens the ``certyneo`` connection form, the task instance of a deferred send and its extra link, the
mapped send tasks with their labels, and the Signatures views while a signer is pending and after the last
one signs. It asserts on the text ops rely on and saves screenshots to ``tests/artifacts/ui/``."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_certyneo.emulator.handle import EmulatorControl
from tests.deployment.conftest import HIRES, ExamplesDeployment
from tests.support.deployment import AirflowStack
from tests.support.polling import wait_until

pytestmark = [
    pytest.mark.ui,
    pytest.mark.deployment,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.timeout(900),
]
ARTIFACTS = Path(__file__).parents[1] / "artifacts" / "ui"
DOCS_SCREENSHOT = Path(__file__).parents[2] / "docs" / "signatures.png"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """Debian's chromium; skipped with the reason where it is missing, except in CI, where that fails."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = "Debian's chromium is not installed (`make system-packages` installs it with apt-get)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; in CI the browser test must run")
    pytest.skip(reason)


def reload_until_shown(page: Any, url: str, text: str | re.Pattern[str], timeout: float = 120) -> Any:
    """Open ``url`` again until its plugin frame shows ``text``, as ops reload a page: the Signatures view
    reads Certyneo at most once per ``[certyneo] view_cache_seconds`` (30 s) per run and API-server worker,
    so a change can take that long to show. Returns the frame."""
    from playwright.sync_api import expect

    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        frame = page.frame_locator("iframe").first
        try:
            expect(frame.get_by_text(text).first).to_be_visible(timeout=10_000)
            return frame
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def states(stack: AirflowStack, dag_id: str, run_id: str) -> dict[tuple[str, int], str]:
    return {(t["task_id"], t["map_index"]): str(t["state"]) for t in stack.api.task_instances(dag_id, run_id)}


def xcom(stack: AirflowStack, dag_id: str, run_id: str, task_id: str, key: str, map_index: int = -1) -> Any:
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
    return stack.api.json("GET", path, params={"map_index": map_index})["value"]


@pytest.fixture(scope="module")
def ui(examples_deployment: ExamplesDeployment) -> tuple[AirflowStack, EmulatorControl]:
    """The shared deployment of the examples, no automatic signing (the test signs): the quick start and
    the onboarding DAG (two new hires today) will run and wait for signatures."""
    chromium()  # skipped (or failed, in CI) before anything runs where the browser is missing
    examples_deployment.emulator.configure(autoSignAfter=None)
    return examples_deployment.stack, examples_deployment.emulator


def test_ops_see_who_signed_and_who_holds_things_up(ui: tuple[AirflowStack, EmulatorControl]) -> None:
    from playwright.sync_api import expect, sync_playwright

    stack, emulator = ui
    started = time.monotonic()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    api = stack.api
    for dag_id in ("certyneo_quickstart", "certyneo_onboarding"):
        api.unpause(dag_id)
    quick_run = api.trigger("certyneo_quickstart")
    onboarding_run = api.trigger("certyneo_onboarding")

    def deferred() -> bool:
        quick = states(stack, "certyneo_quickstart", quick_run)
        onboarding = states(stack, "certyneo_onboarding", onboarding_run)
        waits = [s for (task, _), s in onboarding.items() if task == "wait_for_signatures"]
        return quick.get(("send_and_wait", -1)) == "deferred" and waits == ["deferred", "deferred"]

    wait_until(
        deferred,
        timeout=240,
        interval=1.0,
        what="the quick start's send and both onboarding waits to be deferred",
    )
    quick_envelope = xcom(stack, "certyneo_quickstart", quick_run, "send_and_wait", "envelope_id")
    lea_envelope = xcom(stack, "certyneo_onboarding", onboarding_run, "send", "envelope_id", 0)
    hugo_envelope = xcom(stack, "certyneo_onboarding", onboarding_run, "send", "envelope_id", 1)
    emulator.sign(lea_envelope, "lea@example.com")  # the employee signs; HR is still to sign

    unauthenticated = httpx.get(f"{stack.base_url}/certyneo/signatures/waiting")
    assert unauthenticated.status_code in (401, 403), "the view uses Airflow's authentication"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        base = stack.base_url
        # signed in as the admin, the way the UI's login leaves it: its JWT in the _token cookie
        token = api._headers()["Authorization"].removeprefix("Bearer ")
        context.add_cookies([{"name": "_token", "value": token, "url": base}])
        page = context.new_page()

        # the connection form, type certyneo
        page.goto(f"{base}/connections")
        page.get_by_role("button", name=re.compile("Add Connection", re.I)).first.click()
        page.get_by_text(re.compile("Connection Type", re.I)).first.wait_for()
        type_box = page.get_by_role("combobox").first
        type_box.click()
        page.keyboard.type("Certyneo")
        page.get_by_role("option", name=re.compile("Certyneo", re.I)).first.click()
        for label in ("API key", "Base URL"):
            expect(page.get_by_text(label, exact=False).first).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="Extra Fields", exact=True).click()
        for label in ("Dashboard URL template", "Rate limit shared by", "Environment"):
            expect(page.get_by_text(label, exact=False).first).to_be_visible(timeout=30_000)
        expect(page.get_by_text("the key decides", exact=True).first).to_be_visible()  # an unset environment
        expect(page.get_by_text("null", exact=True)).to_have_count(0)
        page.screenshot(path=str(ARTIFACTS / "1-connection-form.png"), full_page=True)

        # the deferred send and its extra link, available while it waits
        page.goto(f"{base}/dags/certyneo_quickstart/runs/{quick_run}/tasks/send_and_wait/details")
        expect(page.get_by_text(re.compile("deferred", re.I)).first).to_be_visible(timeout=30_000)
        envelope_link = page.get_by_role("link", name=re.compile("Certyneo envelope"))
        if not envelope_link.count():
            envelope_link = page.get_by_role("button", name=re.compile("Certyneo envelope"))
        expect(envelope_link.first).to_be_visible(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "2-deferred-send-extra-link.png"), full_page=True)
        expected_url = f"{emulator.base_url}/app/envelopes/{quick_envelope}"
        href = envelope_link.first.get_attribute("href")
        if href is None:  # a button: follow it
            with page.context.expect_page() as opened:
                envelope_link.first.click()
            href = opened.value.url
            opened.value.close()
        assert href.rstrip("/") == expected_url, href

        # the mapped sends, labelled subject → recipients
        page.goto(f"{base}/dags/certyneo_onboarding/runs/{onboarding_run}/tasks/send/mapped")
        for name, email in HIRES:
            expect(
                page.get_by_text(re.compile(f"{name}.*{re.escape(email)}, rh@example.com")).first
            ).to_be_visible(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "3-mapped-sends-labels.png"), full_page=True)

        # the Signatures tab of the run: Léa signed, HR holding it up; Hugo not yet
        page.goto(f"{base}/dags/certyneo_onboarding/runs/{onboarding_run}/plugin/certyneo-signatures")
        frame = page.frame_locator("iframe").first
        expect(frame.get_by_text("1 of 2 signed: Léa Martin signed at").first).to_be_visible(timeout=30_000)
        expect(frame.get_by_text("holding it up: their turn").first).to_be_visible()
        expect(
            frame.get_by_text("0 of 2 signed; waiting for Hugo Bernard <hugo@example.com>").first
        ).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "4-signatures-run-pending.png"), full_page=True)

        # the deployment page: everything still waiting, oldest first, with who holds it up
        page.goto(f"{base}/plugin/certyneo-signatures-waiting")
        frame = page.frame_locator("iframe").first
        expect(frame.get_by_text("3 waiting.")).to_be_visible(timeout=30_000)
        expect(frame.get_by_text("Ressources humaines <rh@example.com>").first).to_be_visible()
        expect(frame.get_by_text("Marie Dubois <client@example.com>").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "5-signatures-waiting.png"), full_page=True)

        # the last signers sign: the run completes and the views say so
        emulator.sign(lea_envelope, "rh@example.com")
        emulator.sign(hugo_envelope)
        emulator.sign(quick_envelope)
        assert api.wait_for_run("certyneo_onboarding", onboarding_run, timeout=240) == "success"
        run_page = f"{base}/dags/certyneo_onboarding/runs/{onboarding_run}/plugin/certyneo-signatures"
        frame = reload_until_shown(page, run_page, "2 envelopes, 0 still waiting.")
        expect(
            frame.get_by_text(re.compile("2 of 2 signed: Léa Martin signed at .*completed at")).first
        ).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "6-signatures-run-signed.png"), full_page=True)
        waiting_page = f"{base}/plugin/certyneo-signatures-waiting"
        reload_until_shown(page, waiting_page, re.compile("No Certyneo envelope is waiting|1 waiting"))
        browser.close()

    if os.environ.get("CERTYNEO_UPDATE_DOCS") or not DOCS_SCREENSHOT.exists():  # the README's screenshot
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(ARTIFACTS / "4-signatures-run-pending.png", DOCS_SCREENSHOT)
    assert api.wait_for_run("certyneo_quickstart", quick_run, timeout=240) == "success"
    print(f"browser test: {time.monotonic() - started:.0f} s after the stack was up")
