"""One real deployment of the example DAGs shared by the modules that drive them as ops do (the approval of a
bulk send, the browser tour of the UI): set up once (about 35 s on 2 cores), not once per module.

Its tests run last in their session (``pytest_collection_modifyitems``), so the deployment is torn down as
soon as they are done and never runs idle beside the other real deployments, whose timing it would skew."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pendulum
import pytest

from airflow_provider_certyneo.emulator.handle import EmulatorControl, connection_json
from airflow_provider_certyneo.emulator.server import EmulatorProcess
from tests.support.airflow_runs import EXAMPLES
from tests.support.deployment import AirflowStack
from tests.support.manifests import write_manifest

SHARED = "examples_deployment"
KEY = "sk_test_" + "e" * 32
BULK_CONTRACTS = 4  # the approval's manifest
HIRES = [("Léa Martin", "lea@example.com"), ("Hugo Bernard", "hugo@example.com")]  # today's new hires


@dataclass
class ExamplesDeployment:
    stack: AirflowStack
    emulator: EmulatorControl
    manifest: Path  # certyneo_bulk_operator's manifest: BULK_CONTRACTS rows


@pytest.fixture(scope="session")
def examples_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExamplesDeployment]:
    """The emulator and the four Airflow processes running the example DAGs: the bulk operator's manifest,
    the onboarding drop with two new hires today, evidence verified against the emulator's root. Each module
    configures the emulator's signing as its tests need."""
    tmp = tmp_path_factory.mktemp("examples")
    manifest = write_manifest(tmp / "drop", BULK_CONTRACTS)
    hires = tmp / "new-hires"
    hires.mkdir()
    today = pendulum.now("UTC").to_date_string()
    rows = "".join(f"{name},{email},2026-12-01\n" for name, email in HIRES)
    (hires / f"{today}.csv").write_text("name,email,start_date\n" + rows, encoding="utf-8")
    with EmulatorProcess(KEY, per_minute=100, burst=200) as emulator:
        control = EmulatorControl(emulator.base_url)
        env = {
            # the onboarding DAG archives verified evidence: its seals chain to the emulator's root
            "AIRFLOW_CONN_CERTYNEO_DEFAULT": connection_json(
                emulator.base_url, KEY, evidence_trust_roots=control.trust_root()
            ),
            "CERTYNEO_BULK_MANIFEST": str(manifest),
            "CERTYNEO_ONBOARDING_DROP": str(hires),
            "CERTYNEO_ARCHIVE": f"file://{tmp / 'archive'}",
            "CERTYNEO_POLL_INTERVAL": "1",
            "AIRFLOW__CERTYNEO__VIEW_CACHE_SECONDS": "1",
        }
        stack = AirflowStack(tmp / "airflow-home", EXAMPLES, env)
        try:
            stack.start()
            for dag_id in ("certyneo_bulk_operator", "certyneo_quickstart", "certyneo_onboarding"):
                stack.api.wait_for_dag(dag_id)
            yield ExamplesDeployment(stack, control, manifest)
        finally:
            stack.stop()
            control.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The shared deployment's tests last (stable otherwise), so it is stopped right after them."""
    items.sort(key=lambda item: SHARED in getattr(item, "fixturenames", ()))
