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


def everything_in_the_database() -> str:
    """Every row of every table of the metadata DB as text: XCom, rendered fields, triggers, TIs."""
    from airflow.utils.session import create_session
    from sqlalchemy import MetaData

    dump: list[str] = []
    with create_session() as session:
        metadata = MetaData()
        metadata.reflect(bind=session.get_bind())
        for table in metadata.sorted_tables:
            for row in session.execute(table.select()):
                dump.append(repr(tuple(row)))
    return "\n".join(dump)


def files_under(folder: str) -> str:
    texts = []
    for path in Path(folder).rglob("*"):
        if path.is_file() and path.suffix not in (".db", ".db-journal"):
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


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

    places: dict[str, str] = {
        "task and trigger logs": output(),
        "metadata database (XCom, rendered fields, triggers, task instances)": everything_in_the_database(),
        "files under AIRFLOW_HOME (task logs)": files_under(os.environ["AIRFLOW_HOME"]),
        "reprs": " ".join(
            repr(x) for x in [*dag.tasks, CertyneoHook(), CertyneoAsyncHook(), CertyneoHook().settings]
        ),
        "trigger kwargs": repr([ti.next_kwargs for ti in run.get_task_instances()]),
    }
    for place, text in places.items():
        assert key not in text, f"the API key leaked into {place}"
        assert key[8:] not in text, f"the API key (without prefix) leaked into {place}"
        # sign URLs are bearer links: the examples never ask for them (return_sign_urls=False)
        at = text.find("/sign/")
        assert at < 0, f"a sign URL leaked into {place}: …{text[max(0, at - 300) : at + 100]}…"
    assert "sk_test_…" in places["task and trigger logs"], "the environment is shown, not the key"
