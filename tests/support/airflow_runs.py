"""Running test DAGs for real (``dag.test()``: tasks and triggers inline, SQLite), including the steps a
scheduler takes when a worker dies mid-task. Importing this module changes nothing (no AIRFLOW_HOME set),
so a child process can use it too. Also the example DAGs, loaded from their files."""

from __future__ import annotations

import importlib.util
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from airflow.utils.state import TaskInstanceState

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"


def load(name: str) -> ModuleType:
    """The example DAG file ``example_dags/<name>.py``, imported afresh."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def states(run: Any) -> dict[str, str]:
    """Each task's state in a finished run, by task id."""
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def register(dag: Any) -> None:
    """Write a DAG built in a test to the metadata DB, as the DAG processor would for a DAG file: Airflow 3
    runs only serialized DAGs."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
        )


def run_dag(dag: Any, logical_date: datetime | None = None) -> Any:
    """``dag.test()`` for a DAG defined in a test."""
    register(dag)
    if logical_date is None:
        return dag.test()
    return dag.test(logical_date=logical_date, run_after=logical_date)


def fail_lost_worker(dag_id: str) -> list[str]:
    """What the scheduler does when a running task's worker stops heart-beating: the task instance fails,
    and goes up for retry if it has tries left. Returns the ids of the tasks it failed."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.sdk import timezone
    from airflow.utils.session import create_session
    from sqlalchemy import select

    lost = []
    with create_session() as session:
        running = (TaskInstanceState.RUNNING, TaskInstanceState.QUEUED, TaskInstanceState.DEFERRED)
        query = select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.state.in_(running))
        for ti in session.scalars(query):
            ti.state = (
                TaskInstanceState.UP_FOR_RETRY if ti.try_number <= ti.max_tries else TaskInstanceState.FAILED
            )
            ti.end_date = timezone.utcnow()
            lost.append(ti.task_id)
    return lost


def continue_run(dag: Any, logical_date: datetime) -> Any:
    """Carry on with the existing run of ``logical_date``, as the scheduler would after a worker died.

    ``dag.test()`` starts a run over (it clears the date's task instances and replaces the run); a scheduler
    keeps the finished tasks and their XComs and only retries the failed one. Those two steps are skipped.
    """
    from unittest import mock

    import airflow.models.dagrun as dagrun_module
    from airflow.models.dagrun import DagRun
    from airflow.serialization.definitions.dag import SerializedDAG
    from sqlalchemy import select

    def existing_run(*, dag: Any, logical_date: datetime, session: Any, **_: Any) -> DagRun:
        run = session.scalar(
            select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.logical_date == logical_date)
        )
        assert run is not None, f"no run of {dag.dag_id} at {logical_date} to continue"
        run.dag = dag
        return run

    register(dag)
    with (
        mock.patch.object(SerializedDAG, "clear_dags"),
        mock.patch.object(dagrun_module, "get_or_create_dagrun", side_effect=existing_run),
    ):
        return dag.test(logical_date=logical_date, run_after=logical_date)
