"""A real Airflow deployment on this machine, for tests: api-server, scheduler, dag-processor and triggerer as
separate processes (LocalExecutor, SQLite, a throwaway ``AIRFLOW_HOME``, a free port), driven through
Airflow's REST API only, as ops and CI systems drive it.

Reusable: ``with AirflowStack(home, dags_folder, env) as stack: stack.api.trigger(...)``. Every process
runs in its own process group (with the task processes it forks), and ``stop()`` — always called on exit,
also when a test fails — terminates the groups, then kills what is left. Process output goes to
``<home>/processes/<name>.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil

from airflow_provider_certyneo.emulator.server import free_port
from airflow_provider_certyneo.governor.stores import STATE_DIR_ENV
from tests.support.polling import wait_until
from tests.support.sqlite_template import copy_migrated_sqlite

PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")
# each process of a deployment: its name -> the ``airflow`` command it runs
Commands = dict[str, list[str]]
FINAL_RUN_STATES = {"success", "failed"}
SQLITE = "sqlite:///"
# a teardown's SIGTERM, then SIGKILL: a triggerer whose supervisor sleeps out Airflow's 10 s escalation delay
# (an upstream race) or an api-server finishing a request would otherwise hold the next test back 10-20 s
TEARDOWN_GRACE_SECONDS = 5.0


def clean_environment() -> dict[str, str]:
    """This process's environment without any Airflow setting (the test session sets its own)."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "_AIRFLOW"))
        and name != "AIRFLOW_HOME"
    }


def airflow_environment(home: Path, dags_folder: Path, port: int, parallelism: int = 8) -> dict[str, str]:
    """What every process of one deployment shares: home, database, executor, port and secrets."""
    from cryptography.fernet import Fernet

    base_url = f"http://localhost:{port}"
    return {
        **clean_environment(),
        "AIRFLOW_HOME": str(home),
        # the deployment's processes share the key's pace in their own folder, not in the machine's
        STATE_DIR_ENV: str(home / "rate-state"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        # runs are made through the REST API only: no scheduled run appears when a DAG is unpaused
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        # the DAG files never change while a deployment runs: a file is parsed when it appears and again
        # every 10 min, not every 30 s (each parse is a process: about a tenth of a core per deployment)
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
    }


class RestApi:
    """Airflow's public REST API (``/api/v2``) with a token from ``POST /auth/token`` (the simple auth
    manager's or FAB's: both take a JSON username and password), and the plugin pages behind the same
    token."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self._credentials = {"username": username, "password": password}
        self._client = httpx.Client(base_url=base_url, timeout=30)
        self._token: str | None = None

    def close(self) -> None:
        self._client.close()

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            answer = self._client.post("/auth/token", json=self._credentials)
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        answer = self._client.request(
            method, f"/api/v2{path}", headers={**self._headers(), **(headers or {})}, **kwargs
        )
        if answer.status_code == 401:  # token expired
            self._token = None
            answer = self._client.request(
                method, f"/api/v2{path}", headers={**self._headers(), **(headers or {})}, **kwargs
            )
        return answer

    def page(self, path: str) -> httpx.Response:
        """``GET path`` outside ``/api/v2`` (a plugin's page, e.g. ``/certyneo/signatures/waiting``) with this
        user's token, as the UI's frame loads it; redirects are not followed."""
        return self._client.get(path, headers=self._headers(), follow_redirects=False)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.call(method, path, **kwargs)
        if answer.is_error:
            raise AssertionError(f"{method} {path} -> {answer.status_code}: {answer.text[:2000]}")
        return answer.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Until the DAG processor has parsed ``dag_id`` (and the API serves it)."""
        wait_until(
            lambda: self.call("GET", f"/dags/{dag_id}").status_code == 200,
            timeout=timeout,
            interval=1,
            what=f"DAG {dag_id} to be parsed",
            detail=lambda: f"import errors: {self.json('GET', '/importErrors')}",
        )

    def unpause(self, dag_id: str) -> None:
        self.json("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def set_pool(self, name: str, slots: int, description: str = "") -> None:
        if self.call("GET", f"/pools/{name}").status_code == 200:
            self.json("PATCH", f"/pools/{name}", json={"name": name, "slots": slots})
        else:
            self.json("POST", "/pools", json={"name": name, "slots": slots, "description": description})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """A manual run without a logical date (the REST API's default in Airflow 3); returns its run id."""
        run = self.json("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        assert run["logical_date"] is None
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.json("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (the API pages them, at most 100 a page by default)."""
        tis: list[dict[str, Any]] = []
        while True:
            page = self.json(
                "GET",
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                params={"limit": 100, "offset": len(tis), "order_by": "map_index"},
            )
            tis += page["task_instances"]
            if not page["task_instances"] or len(tis) >= page["total_entries"]:
                return tis

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """The run's one task instance of an unmapped task."""
        (ti,) = [ti for ti in self.task_instances(dag_id, run_id) if ti["task_id"] == task_id]
        return ti

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        timeout: float,
        watch: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> str:
        """Until the run is success or failed; ``watch`` sees its task instances on every look."""

        def final_state() -> str:
            if watch is not None:
                watch(self.task_instances(dag_id, run_id))
            state = self.run_state(dag_id, run_id)
            return state if state in FINAL_RUN_STATES else ""

        return wait_until(
            final_state,
            timeout=timeout,
            interval=0.5,
            what=f"run {run_id} of {dag_id} to finish",
            detail=lambda: (
                f"its state: {self.run_state(dag_id, run_id)}; its task instances: "
                + ", ".join(
                    f"{ti['task_id']}[{ti['map_index']}]={ti['state']} (try {ti['try_number']})"
                    for ti in self.task_instances(dag_id, run_id)
                )
            ),
        )

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        answer = self.call(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true", "map_index": map_index},
            headers={"Accept": "application/json"},
        )
        if answer.is_error:
            raise AssertionError(
                f"log of {task_id} try {try_number}: {answer.status_code} {answer.text[:500]}"
            )
        content = answer.json().get("content")
        if isinstance(content, list):
            return "\n".join(json.dumps(line) if not isinstance(line, str) else line for line in content)
        return str(content)


class AirflowStack:
    """The Airflow processes of one deployment: by default the four of a LocalExecutor deployment, run by
    this interpreter; ``commands`` names others (two Celery workers, two triggerers…) and ``python`` another
    interpreter (a virtualenv with the provider installed from its wheel; the processes then run in
    ``home``, so that nothing is imported from this checkout). ``env_for`` gives a process its own
    environment changes (e.g. a triggerer whose connection is broken, a worker's own hostname).
    ``prepare`` runs after ``db migrate``, before any process starts (users and roles of the FAB auth
    manager); ``credentials`` are the REST API user's of :attr:`api` (default: the simple auth manager's
    generated admin password)."""

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        env: dict[str, str] | None = None,
        env_for: dict[str, dict[str, str | None]] | None = None,
        parallelism: int = 8,
        commands: Commands | None = None,
        python: str = sys.executable,
        prepare: Callable[[AirflowStack], None] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.home = home
        self.port = free_port()
        self.env = {**airflow_environment(home, dags_folder, self.port, parallelism), **(env or {})}
        self.env_for = env_for or {}
        self.commands: Commands = commands or {name: [name] for name in PROCESSES}
        self.python = python
        self.prepare = prepare
        self.credentials = credentials
        self.cwd = home if python != sys.executable else None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = home / "processes"
        self.exit_seconds: dict[str, float] = {}
        self.children_exit_seconds: dict[str, float] = {}
        self.setup_seconds: dict[str, float] = {}
        self._api: RestApi | None = None

    @property
    def base_url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def api(self) -> RestApi:
        """The REST API as the deployment's admin (:attr:`credentials`, else the simple auth manager's)."""
        if self._api is None:
            if self.credentials is not None:
                username, password = self.credentials
            else:
                generated = self.home / "simple_auth_manager_passwords.json.generated"
                username, password = next(iter(json.loads(generated.read_text()).items()))
            self._api = self.rest_api(username, password)
        return self._api

    def rest_api(self, username: str, password: str) -> RestApi:
        """The REST API and plugin pages as another user (the caller closes it)."""
        return RestApi(self.base_url, username, password)

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """One ``airflow`` CLI command in this deployment's environment (set-up only: ``db migrate``)."""
        return self._run(["-m", "airflow", *args], timeout)

    def python_code(self, code: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``python -c code args…`` with the deployment's interpreter and environment (set-up only: the FAB
        auth manager's users)."""
        return self._run(["-c", code, *args], timeout)

    def _run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.python, *args], env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result

    def environment(self, name: str) -> dict[str, str]:
        env = dict(self.env)
        for key, value in self.env_for.get(name, {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def start_process(self, name: str) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [self.python, "-m", "airflow", *self.commands[name]],
                env=self.environment(name),
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, with the task processes it starts
            )

    def restart_stopped(self) -> list[str]:
        """Start again, with their default environment, the processes a test stopped and left stopped (a
        test that failed half-way): the next test finds the whole deployment, whatever the last one did."""
        stopped = [name for name in self.commands if name not in self.processes]
        for name in stopped:
            self.env_for.pop(name, None)
            self.start_process(name)
        if stopped:
            self._wait_for_api()
        return stopped

    def start(self) -> AirflowStack:
        """Migrate the database (SQLite: copy a migrated one), prepare, start every process and wait for the
        API server; the seconds each step took go to :attr:`setup_seconds` (what a deployment's set-up costs,
        and where)."""
        self.home.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        database = self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        if database.startswith(SQLITE):  # the copy of a real migration (tests/support/sqlite_template.py)
            copy_migrated_sqlite(Path(database.removeprefix(SQLITE)), self.python, self.env)
        else:
            self.airflow("db", "migrate")
        self.setup_seconds["db migrate"] = time.monotonic() - began
        if self.prepare is not None:
            began = time.monotonic()
            self.prepare(self)
            self.setup_seconds["prepare"] = time.monotonic() - began
        began = time.monotonic()
        for name in self.commands:
            self.start_process(name)
        self._wait_for_api()
        self.setup_seconds["processes up"] = time.monotonic() - began
        return self

    def _wait_for_api(self, timeout: float = 120) -> None:

        def healthy() -> bool:
            self.check_alive()
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=2).status_code == 200
            return False

        wait_until(healthy, timeout=timeout, interval=0.5, what="the api-server to answer", detail=self.tail)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}\n{self.tail(name)}")

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def exit_handled(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> bool:
        """Whether the scheduler has handled the executor's report that this try's process ended (a task
        that defers or waits for a person ends its process). Until then an answer that resumes the task
        meets Airflow's resume-after-defer race (README, Troubleshooting); a fixed pause before answering
        was not enough on a loaded machine."""
        handled = (
            "Received executor event with state success for task instance "
            f"TaskInstanceKey(dag_id='{dag_id}', task_id='{task_id}', run_id='{run_id}', "
            f"try_number={try_number},"
        )
        return handled in self.log("scheduler")

    def tail(self, name: str | None = None, chars: int = 3000) -> str:
        names = [name] if name else list(self.processes)
        return "\n".join(f"--- {n} ---\n{self.log(n)[-chars:]}" for n in names)

    def stop_process(self, name: str, grace: float = 20.0) -> float:
        """SIGTERM to the process group; SIGKILL after ``grace`` seconds. Returns the seconds it took to
        exit (``grace`` or more when it had to be killed). The seconds until the last of its child processes
        had exited (a trigger runner, a log server) go to ``children_exit_seconds``: a supervisor can notice
        a child's exit later than it happened (Airflow's waits in ``select`` until its escalation delay)."""
        process = self.processes.pop(name, None)
        if process is None:
            return 0.0
        children = _children_of(process.pid)
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        children_gone = _wait_exited(children, until=lambda: process.poll() is not None, timeout=grace)
        self.children_exit_seconds[name] = children_gone - started
        try:
            process.wait(timeout=max(0.0, grace - (time.monotonic() - started)))
            took = time.monotonic() - started
        except subprocess.TimeoutExpired:
            took = time.monotonic() - started
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # what is left of the group (task processes)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        self.exit_seconds[name] = took
        return took

    def kill_worker(self, ti_id: str) -> list[int]:
        """SIGKILL the LocalExecutor worker supervising task instance ``ti_id`` and the task process under
        it, as a host dying takes both: nothing reports the try's end, only its heartbeats stop. The pids
        killed."""
        title = f"LocalExecutor: {ti_id}"  # the worker's process title while it supervises that try
        (worker,) = [p for p in _children_of(self.processes["scheduler"].pid) if title in _command_line(p)]
        doomed = [worker, *_children_of(worker.pid)]
        for process in doomed:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(doomed, timeout=10)
        return [process.pid for process in doomed]

    def stop(self, grace: float = TEARDOWN_GRACE_SECONDS) -> None:
        """Every process at once (SIGTERM to each group, SIGKILL after ``grace``, each waited for on its own
        thread): the deployment is gone in the time of its slowest process, not the sum of them. A test
        that checks how a process exits stops it with :meth:`stop_process` and its own grace."""
        if self._api is not None:
            self._api.close()
            self._api = None
        with ThreadPoolExecutor(max_workers=max(1, len(self.processes))) as pool:
            list(pool.map(lambda name: self.stop_process(name, grace), list(self.processes)))

    def __enter__(self) -> AirflowStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _children_of(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).children(recursive=True)
    return []


def _command_line(process: psutil.Process) -> str:
    """Its command line (its title, once it set one); empty for a zombie or a process already gone."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def _exited(child: psutil.Process) -> bool:
    """Gone, or a zombie its parent has not reaped yet: either way it runs no code any more."""
    try:
        return child.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_exited(children: list[psutil.Process], until: Callable[[], bool], timeout: float) -> float:
    """The monotonic time at which the last of ``children`` had exited (polled every 50 ms), or when
    ``until()`` held or ``timeout`` passed, whichever came first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until() and not all(_exited(c) for c in children):
        time.sleep(0.05)
    return time.monotonic()


@contextlib.contextmanager
def airflow_stack(
    home: Path, dags_folder: Path, env: dict[str, str] | None = None, **kwargs: Any
) -> Iterator[AirflowStack]:
    with AirflowStack(home, dags_folder, env, **kwargs) as stack:
        yield stack
