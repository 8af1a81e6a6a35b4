"""The fast unit layer: operators and sensors built in the test and their ``execute(context)`` called
directly, against the real emulator over a socket. No ``dag.test()``, no Airflow process, no metadata DB: the
task instance and the DAG run are small fakes that keep their XComs in a dict."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

SIGNER = [{"email": "marie@example.com", "name": "Marie Dubois"}]


@dataclass
class FakeDagRun:
    start_date: datetime | None
    run_after: datetime


@dataclass
class FakeTaskInstance:
    """What the Certyneo tasks use of a task instance. XComs are kept by (task id, key)."""

    task_id: str = "task"
    dag_id: str = "unit_tests"
    run_id: str = field(default_factory=lambda: f"manual__{uuid.uuid4().hex}")
    try_number: int = 1
    map_index: int = -1
    start_date: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    xcoms: dict[tuple[str, str], Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value", **_: Any) -> Any:
        return self.xcoms.get((task_ids or self.task_id, key))

    def pushed(self, key: str) -> Any:
        """What this task pushed under ``key`` (KeyError when it pushed nothing)."""
        return self.xcoms[(self.task_id, key)]


def make_context(ti: FakeTaskInstance, run_started: datetime | None = None) -> Any:
    """The minimal context of one task instance: ``ti``, ``task_instance`` and ``dag_run``."""
    started = run_started or ti.start_date - timedelta(seconds=1)
    run = FakeDagRun(start_date=started, run_after=started)
    return cast(Any, {"ti": ti, "task_instance": ti, "dag_run": run})


@pytest.fixture
def ti() -> FakeTaskInstance:
    return FakeTaskInstance()


@pytest.fixture
def context(ti: FakeTaskInstance) -> Any:
    return make_context(ti)


def run(operator: Any, context: Any, method: str = "execute", **kwargs: Any) -> Any:
    """Call ``operator.<method>(context, ...)`` as the task runner would, then close its hook (the task
    runner's ``post_execute``), also when the call raises. The context's task instance becomes this
    operator's (its ``task_id``), as in a real run."""
    context["ti"].task_id = operator.task_id
    try:
        return getattr(operator, method)(context, **kwargs)
    finally:
        if "hook" in operator.__dict__:
            operator.hook.close()


@pytest.fixture
def api(certyneo_emulator: CertyneoEmulator) -> Iterator[CertyneoHook]:
    """A hook on the default connection, for a test's own set-up (drafts and sent envelopes)."""
    with CertyneoHook() as hook:
        yield hook


@pytest.fixture
def draft(api: CertyneoHook, pdf_file: Path) -> Callable[..., str]:
    """Make a DRAFT envelope to ``SIGNER`` (or ``recipients``); returns its id."""

    def make(subject: str = "Contrat", recipients: list[dict[str, Any]] | None = None) -> str:
        document = api.upload_document(pdf_file)
        return api.create_envelope(subject, [document["id"]], recipients or SIGNER)["id"]

    return make


@pytest.fixture
def sent(api: CertyneoHook, draft: Callable[..., str]) -> Callable[..., str]:
    """Make a SENT envelope; returns its id."""

    def make(subject: str = "Contrat", recipients: list[dict[str, Any]] | None = None) -> str:
        envelope_id = draft(subject, recipients)
        api.send_envelope(envelope_id)
        return envelope_id

    return make
