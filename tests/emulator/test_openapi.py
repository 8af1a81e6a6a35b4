"""Property-based run (schemathesis) of every operation in the served OpenAPI document: no server error,
no status code, content type, header or body that the document does not describe, and schema-invalid
requests rejected. ("Schema-valid requests accepted" is left out: the contract's rules that OpenAPI cannot
express — a PDF must start with %PDF-, document ids must exist, e-mails must not repeat — rightly refuse
much of what the schema allows.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from airflow_provider_certyneo.emulator.openapi import DOCUMENT
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator

OPERATIONS = [
    f"{method.upper()} {path}"
    for path, item in DOCUMENT["paths"].items()
    for method in item
    if method != "parameters"
]


def test_served_document_is_the_contract(certyneo_emulator: CertyneoEmulator) -> None:
    served = httpx.get(f"{certyneo_emulator.base_url}/api/v1/openapi.json").json()
    assert served == DOCUMENT
    assert len(OPERATIONS) == 18


@pytest.mark.parametrize("operation_label", OPERATIONS)
def test_emulator_matches_its_contract(certyneo_emulator: CertyneoEmulator, operation_label: str) -> None:
    certyneo_emulator.control.configure(ratePerMinute=10_000_000, burst=1_000_000)
    schema = schemathesis.openapi.from_url(f"{certyneo_emulator.base_url}/api/v1/openapi.json")
    method, path = operation_label.split(" ", 1)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    operation = next(op for op in operations if op.method.upper() == method and op.path == path)
    base_url = f"{certyneo_emulator.base_url}/api/v1"
    headers = {"Authorization": f"Bearer {certyneo_emulator.key}"}

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, excluded_checks=[positive_data_acceptance])

    run()
