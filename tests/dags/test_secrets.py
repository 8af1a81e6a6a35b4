"""The API key appears nowhere: logs, XCom, rendered fields, trigger rows, exception texts, reprs — over full
runs of the quick-start DAG (signed and declined), with a unique key searched in everything captured."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import pendulum
import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook
from airflow_provider_certyneo.hooks.certyneo_async import CertyneoAsyncHook
from tests.support.airflow_runs import EXAMPLES, load, states


def database_rows() -> set[str]:
    """Every row of the metadata DB (XCom, rendered fields, triggers, task instances, …) as text."""
    from airflow.utils.session import create_session
    from sqlalchemy import MetaData

    dump: set[str] = set()
    with create_session() as session:
        metadata = MetaData()
        metadata.reflect(bind=session.get_bind())
        for table in metadata.sorted_tables:
            for row in session.execute(table.select()):
                dump.add(f"{table.name}: {tuple(row)!r}")
    return dump


def last_trigger_id() -> int:
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return int(session.scalar(select(func.max(Trigger.id))) or 0)


def triggers_after(trigger_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    """The trigger rows made after ``trigger_id`` (this test's: each xdist worker has its own database and
    runs its tests one by one): classpath, the stored text, and the kwargs decrypted (``Trigger.kwargs``)
    and deserialized, as the triggerer reads them."""
    from airflow.models.trigger import Trigger
    from airflow.sdk.serde import deserialize
    from airflow.utils.session import create_session
    from sqlalchemy import select

    found = []
    with create_session() as session:
        for row in session.scalars(select(Trigger).where(Trigger.id > trigger_id).order_by(Trigger.id)):
            plain = deserialize(row.kwargs)  # serde's form, as the triggerer reads it
            assert isinstance(plain, dict)
            found.append((row.classpath, row.encrypted_kwargs, plain))
    return found


def files_under(folder: Path, since: float = 0.0) -> str:
    """The text of the files under ``folder`` (not the database) last written at or after ``since``."""
    texts = []
    for path in folder.rglob("*"):
        database = path.suffix in (".db", ".db-journal", ".db-wal", ".db-shm")
        if path.is_file() and not database and path.stat().st_mtime >= since:
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


def run_log_folders(home: Path, dag_id: str, run_id: str) -> list[Path]:
    """The task-log folders of one DAG run under ``home``."""
    return [p for p in home.rglob(f"run_id={run_id}") if p.parent.name == f"dag_id={dag_id}"]


WAIT_TRIGGERS = {
    "certyneo_quickstart": "airflow_provider_certyneo.triggers.envelope.CertyneoEnvelopeTrigger",
    "operator_dag": "airflow_provider_certyneo.triggers.envelope_set.CertyneoEnvelopeSetTrigger",
    "mapped_dag": "airflow_provider_certyneo.triggers.envelope_set.CertyneoEnvelopeSetTrigger",  # per batch
}  # the trigger each run defers to (the onboarding sensor may find its envelope signed at its first look)


def assert_no_key_in_triggers(key: str, triggers: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Neither the stored row, nor its kwargs decrypted, nor the ``serialize()`` of the trigger the triggerer
    rebuilds from them holds the key."""
    from airflow.sdk._shared.module_loading import import_string

    for classpath, stored, kwargs in triggers:
        for what, text in (("stored row", stored), ("decrypted kwargs", repr(kwargs))):
            assert key not in text, f"the API key leaked into the {what} of a {classpath}"
            assert key[8:] not in text, (
                f"the API key (without prefix) leaked into the {what} of a {classpath}"
            )
        serialized = repr(import_string(classpath)(**kwargs).serialize())
        assert key not in serialized, f"the API key leaked into {classpath}.serialize()"
        assert key[8:] not in serialized, f"the API key (without prefix) leaked into {classpath}.serialize()"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dag_file", "dag_attribute", "outcome"),
    [
        ("certyneo_quickstart", "dag", "sign"),
        ("certyneo_quickstart", "dag", "decline"),
        ("certyneo_bulk_contracts", "operator_dag", "sign"),
        ("certyneo_bulk_contracts", "mapped_dag", "decline"),
        ("certyneo_onboarding", "dag", "sign"),
    ],
)
def test_the_key_is_never_exposed(
    signing_emulator: CertyneoEmulator,
    archive: Path,
    output: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    dag_file: str,
    dag_attribute: str,
    outcome: str,
) -> None:
    """Everything this test's run wrote — its database rows (those new or changed since it started), its
    trigger rows decrypted and rebuilt, the files it wrote, its output — holds neither the key nor a sign
    URL. Only this test's own rows and files are searched: what other tests wrote is not its to judge."""
    key = "sk_test_" + "LEAKCANARY" + secrets.token_urlsafe(24)
    signing_emulator.control.add_key("test", "leak canary", key)
    monkeypatch.setenv("AIRFLOW_CONN_CERTYNEO_DEFAULT", signing_emulator.connection_json(key))
    signing_emulator.control.configure(autoAction=outcome)
    drop = tmp_path / "drop"
    shutil.copytree(EXAMPLES / "files", drop)
    monkeypatch.setenv("CERTYNEO_BULK_MANIFEST", str(drop / "clients.csv"))
    today = pendulum.now("UTC").to_date_string()
    (drop / "new-hires" / f"{today}.csv").write_text(
        "name,email,start_date\nLea,lea@example.com,2026-12-01\n"
    )
    monkeypatch.setenv("CERTYNEO_ONBOARDING_DROP", str(drop / "new-hires"))
    dag = getattr(load(dag_file), dag_attribute)
    rows_before = database_rows()
    trigger_before = last_trigger_id()
    started = time.time() - 1  # file times have a coarse resolution on some file systems
    run = dag.test(logical_date=pendulum.now("UTC"), mark_success_pattern="approve")  # the bulk approval

    triggers = triggers_after(trigger_before)
    expected = WAIT_TRIGGERS.get(dag_attribute, WAIT_TRIGGERS.get(dag_file))
    if expected is not None:
        assert expected in {classpath for classpath, *_ in triggers}, f"the run deferred to a {expected}"
    assert_no_key_in_triggers(key, triggers)
    ran = states(run)
    assert "failed" not in ran.values() if outcome == "sign" else "failed" in ran.values()

    home = Path(os.environ["AIRFLOW_HOME"])
    logs = output()
    own_rows = "\n".join(sorted(database_rows() - rows_before))
    assert run.run_id in own_rows, "the run's own rows were searched"
    this_run: dict[str, str] = {
        "task and trigger logs": logs,
        "metadata database (this test's rows: XCom, rendered fields, triggers, task instances)": own_rows,
        "files this test wrote under AIRFLOW_HOME (task logs)": files_under(home, since=started),
        "reprs": " ".join(
            repr(x) for x in [*dag.tasks, CertyneoHook(), CertyneoAsyncHook(), CertyneoHook().settings]
        ),
        "events the tasks resumed with": repr([ti.next_kwargs for ti in run.get_task_instances()]),
    }
    for place, text in this_run.items():
        assert key not in text, f"the API key leaked into {place}"
        assert key[8:] not in text, f"the API key (without prefix) leaked into {place}"
        # sign URLs are bearer links: the examples never ask for them (return_sign_urls=False)
        at = text.find("/sign/")
        assert at < 0, f"a sign URL leaked into {place}: …{text[max(0, at - 300) : at + 100]}…"
    assert "sk_test_…" in logs, "the environment is shown, not the key"


@pytest.mark.slow
def test_the_asset_watcher_trigger_never_holds_the_key(
    certyneo_emulator: CertyneoEmulator, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watcher's trigger (``CertyneoEnvelopeEventTrigger``) is written by Airflow's own DAG parsing,
    its kwargs encrypted: this test's DAG (a connection id of its own, so the row is new) is parsed, and its
    row decrypted, rebuilt and ``serialize()``d holds no key."""
    from tests.support.airflow_runs import register

    key = "sk_test_" + "LEAKCANARY" + secrets.token_urlsafe(24)
    certyneo_emulator.control.add_key("test", "leak canary", key)
    conn_id = f"certyneo_leak_{secrets.token_hex(4)}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", certyneo_emulator.connection_json(key))
    monkeypatch.setenv("CERTYNEO_CONN_ID", conn_id)
    monkeypatch.setenv("CERTYNEO_WATCH", "true")
    before = last_trigger_id()
    register(load("certyneo_archive_signed").dag)
    triggers = triggers_after(before)
    assert [(classpath, kwargs["certyneo_conn_id"]) for classpath, _, kwargs in triggers] == [
        ("airflow_provider_certyneo.triggers.events.CertyneoEnvelopeEventTrigger", conn_id)
    ]
    assert not triggers[0][1].startswith("{"), (
        "the stored kwargs are encrypted (so only decrypted is a search)"
    )
    assert_no_key_in_triggers(key, triggers)
