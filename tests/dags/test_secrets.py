"""The API key appears nowhere: logs, XCom, rendered fields, trigger rows, exception texts, reprs — over full
runs of the quick-start DAG (signed and declined), with a unique key searched in everything captured."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import pendulum
import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook
from airflow_provider_certyneo.hooks.certyneo_async import CertyneoAsyncHook
from tests.support.airflow_runs import EXAMPLES, load, states


def database_rows(dag_id: str | None = None, run_id: str | None = None) -> str:
    """Rows of the metadata DB as text: XCom, rendered fields, triggers, TIs. With ``dag_id`` and ``run_id``,
    only this run's rows (and its DAG's, in tables without runs: its code, its serialized form) and the
    triggers its tasks deferred to: what other tests of the session wrote (each xdist worker has one
    database for all its tests) is not this run's leak."""
    from airflow.utils.session import create_session
    from sqlalchemy import MetaData

    dump: list[str] = []
    with create_session() as session:
        metadata = MetaData()
        metadata.reflect(bind=session.get_bind())
        trigger_ids: set[Any] = set()
        if run_id is not None:
            tis = metadata.tables["task_instance"]
            query = tis.select().where(tis.c.dag_id == dag_id, tis.c.run_id == run_id)
            trigger_ids = {row.trigger_id for row in session.execute(query) if row.trigger_id is not None}
        for table in metadata.sorted_tables:
            query = table.select()
            if dag_id is not None:
                dag_column = table.c.get("dag_id", table.c.get("source_dag_id"))
                run_column = table.c.get("run_id", table.c.get("source_run_id"))
                if table.name == "trigger":
                    query = query.where(table.c.id.in_(trigger_ids))
                elif dag_column is None:
                    continue
                else:
                    query = query.where(dag_column == dag_id)
                    if run_column is not None:
                        query = query.where(run_column == run_id)
            for row in session.execute(query):
                dump.append(repr(tuple(row)))
    return "\n".join(dump)


def files_under(folder: Path) -> str:
    texts = []
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix not in (".db", ".db-journal"):
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


def run_log_folders(home: Path, dag_id: str, run_id: str) -> list[Path]:
    """The task-log folders of one DAG run under ``home``."""
    return [p for p in home.rglob(f"run_id={run_id}") if p.parent.name == f"dag_id={dag_id}"]


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
    run = dag.test(logical_date=pendulum.now("UTC"))
    ran = states(run)
    assert "failed" not in ran.values() if outcome == "sign" else "failed" in ran.values()

    home = Path(os.environ["AIRFLOW_HOME"])
    logs = output()
    everywhere: dict[str, str] = {
        "task and trigger logs": logs,
        "metadata database (XCom, rendered fields, triggers, task instances)": database_rows(),
        "files under AIRFLOW_HOME (task logs)": files_under(home),
        "reprs": " ".join(
            repr(x) for x in [*dag.tasks, CertyneoHook(), CertyneoAsyncHook(), CertyneoHook().settings]
        ),
        "trigger kwargs": repr([ti.next_kwargs for ti in run.get_task_instances()]),
    }
    for place, text in everywhere.items():
        # the key is this test's own: it may be searched for in everything the session wrote
        assert key not in text, f"the API key leaked into {place}"
        assert key[8:] not in text, f"the API key (without prefix) leaked into {place}"
    this_run: dict[str, str] = {
        "task and trigger logs": logs,
        "metadata database (this run's rows)": database_rows(run.dag_id, run.run_id),
        "this run's task logs": "\n".join(
            files_under(folder) for folder in run_log_folders(home, run.dag_id, run.run_id)
        ),
        "reprs": everywhere["reprs"],
        "trigger kwargs": everywhere["trigger kwargs"],
    }
    assert run.run_id in this_run["metadata database (this run's rows)"], "the run's own rows were searched"
    for place, text in this_run.items():
        # sign URLs are bearer links: the examples never ask for them (return_sign_urls=False); other tests
        # may (their runs' rows are not searched)
        at = text.find("/sign/")
        assert at < 0, f"a sign URL leaked into {place}: …{text[max(0, at - 300) : at + 100]}…"
    assert "sk_test_…" in logs, "the environment is shown, not the key"
