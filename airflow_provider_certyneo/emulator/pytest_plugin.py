"""pytest fixtures that put a Certyneo emulator behind your DAG tests.

``certyneo_emulator`` gives each test a clean emulator (state, counters, settings and faults reset) and sets
``AIRFLOW_CONN_CERTYNEO_DEFAULT`` to point at it, so hooks, operators and DAGs run unchanged. The connection
trusts the emulator's test root for evidence (extra ``evidence_trust_roots``), so archived bundles verify.

Registered (``pytest11`` entry point) for every pytest session of any environment where the provider is
installed, with or without the ``emulator`` extra; so it imports nothing heavy (FastAPI, uvicorn, pypdf)
until a test asks for the fixture, and only that test needs the extra (``pip install
'airflow-provider-certyneo[emulator]'``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_certyneo.emulator.handle import EmulatorControl
    from airflow_provider_certyneo.emulator.server import EmulatorServer


@dataclass
class CertyneoEmulator:
    """What a test needs: where the emulator is, a test key, a live key, and the control API."""

    server: EmulatorServer
    control: EmulatorControl

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def key(self) -> str:
        return self.server.test_key

    @property
    def live_key(self) -> str | None:
        return self.server.live_key

    @property
    def trust_root(self) -> str:
        """The PEM of the test root CA the emulator seals with (the same for the whole session)."""
        cached: str | None = getattr(self.server, "_trust_root_pem", None)
        if cached is None:
            cached = self.control.trust_root()
            self.server._trust_root_pem = cached  # type: ignore[attr-defined]
        return cached

    def connection_json(self, key: str | None = None, **extra: object) -> str:
        """An ``AIRFLOW_CONN_*`` value (JSON) for a ``certyneo`` connection to this emulator; it trusts the
        emulator's test root for evidence unless ``evidence_trust_roots`` is given."""
        from airflow_provider_certyneo.emulator.handle import connection_json

        extra.setdefault("evidence_trust_roots", self.trust_root)
        return connection_json(self.base_url, key or self.key, **extra)


@pytest.fixture(scope="session")
def certyneo_emulator_server() -> Iterator[EmulatorServer]:
    """One emulator for the whole session, on a free port."""
    from airflow_provider_certyneo.emulator.config import EmulatorConfig
    from airflow_provider_certyneo.emulator.server import EmulatorServer

    server = EmulatorServer(config=EmulatorConfig())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def certyneo_emulator(
    certyneo_emulator_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CertyneoEmulator]:
    """A clean emulator for one test, wired to the ``certyneo_default`` connection."""
    from airflow_provider_certyneo.emulator.handle import EmulatorControl

    control = EmulatorControl(certyneo_emulator_server.base_url)
    control.clear_faults()
    control.configure(
        ratePerMinute=100.0,
        burst=200,
        autoSignAfter=None,
        autoAction="sign",
        declineReason="I do not agree with the terms",
        webhookAttempts=5,
        webhookBackoff=1.0,
        envelopeLifetimeSeconds=30 * 24 * 3600.0,
        clockSkewSeconds=0.0,
    )
    control.reset()
    handle = CertyneoEmulator(certyneo_emulator_server, control)
    monkeypatch.setenv("AIRFLOW_CONN_CERTYNEO_DEFAULT", handle.connection_json())
    yield handle
    control.close()
