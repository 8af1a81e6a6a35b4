"""Every trigger survives its own serialization (the triggerer rebuilds it from the kwargs alone), and the
kwargs — stored in the metadata DB, shown in the UI — never hold the API key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from airflow.triggers.base import BaseTrigger

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.triggers.envelope import CertyneoEnvelopeTrigger
from airflow_provider_certyneo.triggers.envelope_set import CertyneoEnvelopeSetTrigger
from airflow_provider_certyneo.triggers.events import CertyneoEnvelopeEventTrigger

TRIGGERS: dict[str, Callable[[], Any]] = {
    "envelope": lambda: CertyneoEnvelopeTrigger(
        "env_1",
        "certyneo_default",
        poll_interval=12,
        end_time=1_900_000_000.5,
        target_statuses=["COMPLETED", "SENT"],
        known_as_of="2026-01-01T00:00:00.500Z",
        not_before=1_899_999_000.0,
    ),
    "envelope_set": lambda: CertyneoEnvelopeSetTrigger(
        ["env_1", "env_2"],
        "certyneo_default",
        poll_interval=30,
        end_time=None,
        known_as_of="2026-01-01T00:00:00Z",
        poll_share=0.25,
        not_before=1_899_999_000.0,
    ),
    "envelope_event": lambda: CertyneoEnvelopeEventTrigger(
        "certyneo_default", "declined", poll_interval=20, lookback=60
    ),
}


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_round_trip(name: str) -> None:
    trigger: BaseTrigger = TRIGGERS[name]()
    classpath, kwargs = trigger.serialize()
    module, _, qualname = classpath.rpartition(".")
    assert (module, qualname) == (type(trigger).__module__, type(trigger).__qualname__)
    assert type(trigger)(**kwargs).serialize() == (classpath, kwargs)


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_kwargs_are_plain_and_hold_no_key(certyneo_emulator: CertyneoEmulator, name: str) -> None:
    """Built while the connection (with its key) is defined: the kwargs name it, never copy its secret."""
    _, kwargs = TRIGGERS[name]().serialize()

    def plain(value: Any) -> bool:
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return isinstance(value, (str, int, float, type(None)))

    assert all(plain(v) for v in kwargs.values()), kwargs
    assert certyneo_emulator.key not in repr(kwargs)
    assert not any("key" in name.lower() or "password" in name.lower() for name in kwargs)


@pytest.mark.parametrize("name", ["envelope", "envelope_set"])
def test_holding_until_changes_only_not_before(name: str) -> None:
    trigger = TRIGGERS[name]()
    _, kwargs = trigger.serialize()
    _, held = trigger.holding_until(1_950_000_000.0).serialize()
    assert held == {**kwargs, "not_before": 1_950_000_000.0}
