"""The Signatures view's looks at Certyneo for a small run (three envelopes or fewer, each read alone):
a later look reads each again, so a signature shows once the cache window has passed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.plugins import signatures
from tests.support.signatures import seed_envelopes


@pytest.fixture
def looks() -> Iterator[None]:
    signatures.LOOKS.clear()
    yield
    signatures.LOOKS.clear()


def test_a_later_look_at_a_small_run_reads_each_envelope_again(
    looks: None, certyneo_emulator: CertyneoEmulator
) -> None:
    store = certyneo_emulator.server.runtime.store
    ids = frozenset(seed_envelopes(store, 2, certyneo_emulator.base_url))
    since = datetime.now(timezone.utc) - timedelta(hours=2)
    first = signatures.read_envelopes("certyneo_default", ids, since, scope="small run")
    assert {envelope["status"] for envelope in first.values()} == {"SENT"}
    for envelope_id in ids:
        store.sign_next(envelope_id)
    cached = signatures.read_envelopes("certyneo_default", ids, since, scope="small run")
    assert {envelope["status"] for envelope in cached.values()} == {"SENT"}, "within the cache window"
    signatures.LOOKS.expire()
    later = signatures.read_envelopes("certyneo_default", ids, since, scope="small run")
    assert {envelope["status"] for envelope in later.values()} == {"COMPLETED"}, later
