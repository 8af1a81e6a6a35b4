"""Fault injection (off by default), counters, reset, and the control API staying outside /api/v1."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_certyneo.emulator.handle import EmulatorControl
from airflow_provider_certyneo.emulator.models import new_key_secret
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.emulator.server import EmulatorProcess
from tests.emulator.conftest import PDF


def test_faults_are_off_by_default(certyneo_emulator: CertyneoEmulator, api: httpx.Client) -> None:
    assert certyneo_emulator.control.faults() == []
    assert all(api.get("/keys").status_code == 200 for _ in range(20))


@pytest.mark.parametrize(("action", "status"), [("error500", 500), ("error503", 503)])
def test_error_faults(
    certyneo_emulator: CertyneoEmulator, api: httpx.Client, action: str, status: int
) -> None:
    certyneo_emulator.control.set_faults({"action": action, "path": "/keys", "times": 2})
    assert [api.get("/keys").status_code for _ in range(3)] == [status, status, 200]
    assert api.get("/keys").json()["data"]


def test_a_fault_on_the_first_paths_only(
    certyneo_emulator: CertyneoEmulator, api: httpx.Client, draft: Any
) -> None:
    envelopes = [draft()["id"] for _ in range(3)]
    certyneo_emulator.control.set_faults(
        {"action": "error503", "method": "POST", "path": "/send$", "times": 2, "paths": 2}
    )
    statuses = {e: [api.post(f"/envelopes/{e}/send").status_code for _ in range(3)] for e in envelopes}
    assert statuses == {
        envelopes[0]: [503, 503, 200],
        envelopes[1]: [503, 503, 200],
        envelopes[2]: [200, 409, 409],
    }
    (rule,) = certyneo_emulator.control.faults()
    assert rule["fired"] == 4
    assert set(rule["firedByPath"]) == {f"/api/v1/envelopes/{e}/send" for e in envelopes[:2]}


def test_share_of_requests(certyneo_emulator: CertyneoEmulator, api: httpx.Client) -> None:
    certyneo_emulator.control.set_faults({"action": "error503", "probability": 0.5}, seed=7)
    statuses = [api.get("/keys").status_code for _ in range(100)]
    assert 25 < statuses.count(503) < 75


def test_latency(certyneo_emulator: CertyneoEmulator, api: httpx.Client) -> None:
    certyneo_emulator.control.set_faults({"action": "latency", "seconds": 0.3, "times": 1})
    started = time.monotonic()
    api.get("/keys")
    assert time.monotonic() - started >= 0.3


def test_slow_answer_applies_first_then_holds_the_answer(
    certyneo_emulator: CertyneoEmulator, api: httpx.Client, draft: Any
) -> None:
    envelope = draft()
    certyneo_emulator.control.set_faults(
        {"action": "slow_answer", "method": "POST", "path": "/send$", "seconds": 5, "times": 1}
    )
    with pytest.raises(httpx.ReadTimeout):
        api.post(f"/envelopes/{envelope['id']}/send", timeout=0.5)
    assert api.get(f"/envelopes/{envelope['id']}").json()["status"] == "SENT"


def test_reset_drops_the_connection_before_applying(
    certyneo_emulator: CertyneoEmulator, api: httpx.Client, draft: Any
) -> None:
    envelope = draft()
    certyneo_emulator.control.set_faults({"action": "reset", "method": "POST", "path": "/send$", "times": 1})
    with pytest.raises(httpx.TransportError):
        api.post(f"/envelopes/{envelope['id']}/send")
    assert api.get(f"/envelopes/{envelope['id']}").json()["status"] == "DRAFT"


def test_lost_response_applies_then_drops(
    certyneo_emulator: CertyneoEmulator, api: httpx.Client, draft: Any
) -> None:
    envelope = draft()
    certyneo_emulator.control.set_faults({"action": "lost", "method": "POST", "path": "/send$", "times": 1})
    with pytest.raises(httpx.RemoteProtocolError):
        api.post(f"/envelopes/{envelope['id']}/send")
    assert api.get(f"/envelopes/{envelope['id']}").json()["status"] == "SENT"
    counters = certyneo_emulator.control.counters()
    assert counters["sends"] == {envelope["id"]: 1}


def test_counters_by_route_and_reset(
    certyneo_emulator: CertyneoEmulator, api: httpx.Client, draft: Any
) -> None:
    envelope = draft()
    api.post(f"/envelopes/{envelope['id']}/send")
    api.post(f"/envelopes/{envelope['id']}/send")
    counters = certyneo_emulator.control.counters()
    assert counters["requests"]["POST /api/v1/envelopes/{id}/send"] == 2
    assert counters["requests"]["POST /api/v1/envelopes"] == 1
    assert counters["requests"]["POST /api/v1/documents"] == 1
    assert counters["sends"] == {envelope["id"]: 1}
    certyneo_emulator.control.reset()
    assert certyneo_emulator.control.counters()["requestsTotal"] == 0
    assert api.get(f"/envelopes/{envelope['id']}").status_code == 404
    assert api.get("/keys").status_code == 200


def test_the_request_log_records_arrival_answer_retry_after_and_fault(
    certyneo_emulator: CertyneoEmulator, api: httpx.Client
) -> None:
    control = certyneo_emulator.control
    control.configure(ratePerMinute=60, burst=1)
    control.set_faults({"action": "error503", "path": "/documents", "times": 1})
    before = time.monotonic()
    statuses = [api.get("/keys").status_code, api.get("/keys").status_code, api.get("/documents").status_code]
    after = time.monotonic()
    assert statuses == [200, 429, 503]
    log = control.requests()
    assert [(e["route"], e["status"], e["retryAfter"], e["fault"]) for e in log] == [
        ("GET /api/v1/keys", 200, None, None),
        ("GET /api/v1/keys", 429, 1.0, None),
        ("GET /api/v1/documents", 503, None, "error503"),
    ]
    # the emulator runs in this process: its monotonic clock is this one
    assert before <= log[0]["at"] <= log[0]["answeredAt"] <= log[1]["at"] <= log[2]["at"] <= after
    assert all(e["userAgent"].startswith("python-httpx/") for e in log)
    assert control.requests(since=log[1]["seq"]) == log[2:]
    control.reset()
    assert control.requests() == []


def test_control_api_is_not_in_the_openapi_document(certyneo_emulator: CertyneoEmulator) -> None:
    document = httpx.get(f"{certyneo_emulator.base_url}/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.0")
    assert not any("_emulator" in path or path.split("/")[1] == "sign" for path in document["paths"])
    operations = [m for item in document["paths"].values() for m in item if m != "parameters"]
    assert len(operations) == 18


def test_restart_keeps_state(certyneo_emulator: CertyneoEmulator, api: httpx.Client, draft: Any) -> None:
    envelope = draft()
    certyneo_emulator.server.restart()
    with httpx.Client(
        base_url=f"{certyneo_emulator.base_url}/api/v1",
        headers={"Authorization": f"Bearer {certyneo_emulator.key}"},
    ) as fresh:
        assert fresh.get(f"/envelopes/{envelope['id']}").json()["status"] == "DRAFT"


@pytest.mark.slow
def test_killed_process_restarts_from_its_state_file(tmp_path: Path) -> None:
    """SIGKILL gives no chance to save on the way out: what a client was told must already be on disk."""
    key = new_key_secret("test")
    emulator = EmulatorProcess(key, state_file=str(tmp_path / "state.pickle")).start()
    try:
        with httpx.Client(
            base_url=f"{emulator.base_url}/api/v1", headers={"Authorization": f"Bearer {key}"}
        ) as api:
            document = api.post("/documents", files={"file": ("c.pdf", PDF, "application/pdf")}).json()
            body = {
                "subject": "Kept",
                "documentIds": [document["id"]],
                "recipients": [{"email": "a@example.com", "name": "A", "role": "SIGNER"}],
            }
            envelope = api.post("/envelopes", json=body).json()
            assert api.post(f"/envelopes/{envelope['id']}/send").status_code == 200
        emulator.kill()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{emulator.base_url}/_emulator/health", timeout=1)
        emulator.start()
        control = EmulatorControl(emulator.base_url)
        assert control.counters()["sends"] == {envelope["id"]: 1}
        control.sign(envelope["id"])
        with httpx.Client(
            base_url=f"{emulator.base_url}/api/v1", headers={"Authorization": f"Bearer {key}"}
        ) as api:
            assert api.get(f"/envelopes/{envelope['id']}").json()["status"] == "COMPLETED"
            signed = api.get(f"/envelopes/{envelope['id']}/signed-document")
            assert signed.status_code == 200
            assert signed.content.startswith(b"%PDF-")
            assert api.get(f"/documents/{document['id']}").json()["sha256"] == document["sha256"]
        control.close()
    finally:
        emulator.stop()


def test_clock_skew_shifts_timestamps_and_the_date_header(
    certyneo_emulator: CertyneoEmulator, api: httpx.Client, draft: Any
) -> None:
    from email.utils import parsedate_to_datetime

    from airflow_provider_certyneo.client.timestamps import parse_rfc3339

    certyneo_emulator.control.configure(clockSkewSeconds=-3600)
    response = api.get("/keys")
    envelope = draft()
    machine_now = time.time()
    assert abs(parsedate_to_datetime(response.headers["date"]).timestamp() - (machine_now - 3600)) < 5
    assert abs(parse_rfc3339(envelope["createdAt"]).timestamp() - (machine_now - 3600)) < 5
