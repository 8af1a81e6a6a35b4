from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_certyneo.emulator.pdf import text_pdf
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator

PDF = text_pdf("Contract", ["Page one"])


def client_for(emulator: CertyneoEmulator, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=f"{emulator.base_url}/api/v1", headers=headers, timeout=30)


@pytest.fixture
def api(certyneo_emulator: CertyneoEmulator) -> Iterator[httpx.Client]:
    with client_for(certyneo_emulator, certyneo_emulator.key) as client:
        yield client


@pytest.fixture
def live_api(certyneo_emulator: CertyneoEmulator) -> Iterator[httpx.Client]:
    with client_for(certyneo_emulator, certyneo_emulator.live_key) as client:
        yield client


@pytest.fixture
def upload(api: httpx.Client) -> Callable[..., dict[str, Any]]:
    def do(data: bytes = PDF, name: str = "contract.pdf") -> dict[str, Any]:
        response = api.post("/documents", files={"file": (name, data, "application/pdf")})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    return do


@pytest.fixture
def draft(api: httpx.Client, upload: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    def do(**overrides: Any) -> dict[str, Any]:
        body = {
            "subject": "Contrat de prestation",
            "documentIds": [upload()["id"]],
            "recipients": [{"email": "client@example.com", "name": "Marie Dubois", "role": "SIGNER"}],
            **overrides,
        }
        response = api.post("/envelopes", json=body)
        assert response.status_code == 201, response.text
        envelope: dict[str, Any] = response.json()
        return envelope

    return do


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    error: dict[str, Any] = body["error"]
    return error


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.pdf"
    with path.open("wb") as handle:
        handle.write(PDF[:-6])
        handle.write(b"\0" * (25 * 1024 * 1024))
    return path
