"""A production-shaped Airflow deployment on this machine: PostgreSQL as the metadata database (a throwaway
cluster of Debian's ``postgresql``), CeleryExecutor with Redis as its broker, two Celery workers that share
nothing but Redis (each its own hostname, log-server port and rate-state folder), two triggerers, an API
server with two worker processes, a scheduler and a DAG processor — all run from a virtualenv where the
provider is installed from its built wheel, not from this checkout. Users sign in through Airflow's FAB auth
manager, as in production (tests/support/fab.py): an admin for the REST API, and whichever limited users
and roles a test asks for.

``with production_stack(tmp, dags_folder, env) as deployment: deployment.stack.api.trigger(...)``; every
process, the database and Redis are stopped on exit, also when the test fails.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_certyneo.emulator.server import free_port
from airflow_provider_certyneo.governor.stores import STATE_DIR_ENV
from tests.support.deployment import AirflowStack
from tests.support.fab import ADMIN, FAB_AUTH_MANAGER, FabRole, FabUser, create_roles_and_users
from tests.support.postgres import PostgresCluster, postgres_cluster
from tests.support.redis import RedisServer
from tests.support.wheel import ROOT, build_wheel, source_digest

WORKERS = ("worker-a", "worker-b")
TRIGGERERS = ("triggerer-a", "triggerer-b")
HOSTNAME_ENV = "CERTYNEO_TEST_HOSTNAME"
# [core] hostname_callable: each process says which "host" it is, so task instances and triggerer jobs
# name the worker or triggerer that ran them
HOSTNAMES = '''
"""The "host" this Airflow process plays, from its environment (test deployments only)."""
import os
import socket


def hostname() -> str:
    return os.environ.get("CERTYNEO_TEST_HOSTNAME") or socket.getfqdn()
'''


@dataclass
class ProductionDeployment:
    stack: AirflowStack
    database: PostgresCluster
    redis: RedisServer
    python: Path

    def provider_location(self) -> str:
        """Where the deployment's interpreter imports the provider from (its site-packages, not here)."""
        result = subprocess.run(
            [str(self.python), "-c", "import airflow_provider_certyneo as p; print(p.__file__)"],
            capture_output=True,
            text=True,
            cwd=self.stack.home,
            env=self.stack.env,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout.strip()


# ``make test`` makes this virtualenv while ruff and mypy run (``python -m tests.support.production``); the
# production-shaped tests use it when it was made from the sources as they are, else make their own
PREBUILT = ROOT / ".venv-wheel"


def wheel_packages(wheel: Path) -> list[str]:
    """This machine's Airflow version, the Celery provider, the FAB provider of the test virtualenv (``make
    test`` installs it with the test extra), the PostgreSQL drivers and the provider from ``wheel`` (with
    the emulator and Redis extras)."""
    airflow = importlib.metadata.version("apache-airflow")
    fab = importlib.metadata.version("apache-airflow-providers-fab")
    return [
        f"apache-airflow=={airflow}",
        "apache-airflow-providers-celery",
        # Celery 5.7.0 no longer has celery.backends.database.retry, which the Celery provider (3.26.0)
        # imports: every worker exits at start. It is chosen once python-dateutil stays below 4 (as with the
        # FAB provider); 5.6.3 otherwise
        "celery<5.7",
        f"apache-airflow-providers-fab=={fab}",
        "psycopg2-binary",
        "asyncpg",  # Airflow's async engine on PostgreSQL
        f"airflow-provider-certyneo[emulator,redis] @ {wheel.as_uri()}",
    ]


def wheel_virtualenv(folder: Path) -> Path:
    """A virtualenv in ``folder`` with :func:`wheel_packages`, the provider's wheel built from this checkout,
    byte-compiled (else the deployment's nine processes, started at once, each compile the same modules);
    returns its python."""
    wheel = build_wheel(folder / "dist")
    uv = Path(sys.executable).with_name("uv")
    venv = folder / "venv"
    subprocess.run(
        [str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=300
    )
    python = venv / "bin" / "python"
    install = [str(uv), "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python)]
    result = subprocess.run(
        [*install, *wheel_packages(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return python


def _stamp() -> str:
    """What the prebuilt virtualenv must have been made from: these sources, these versions."""
    return json.dumps({"sources": source_digest(), "packages": wheel_packages(Path("/wheel"))})


def wheel_python(folder: Path) -> Path:
    """The prebuilt virtualenv's python when it was made from the sources as they are now; else a new
    virtualenv in ``folder``."""
    stamp = PREBUILT / "stamp.json"
    if stamp.exists() and stamp.read_text() == _stamp():
        return PREBUILT / "venv" / "bin" / "python"
    return wheel_virtualenv(folder)


def prebuild() -> None:
    """(Re)make :data:`PREBUILT` from the sources as they are (``make test``, beside ruff and mypy)."""
    stamp = _stamp()
    if (PREBUILT / "stamp.json").exists() and (PREBUILT / "stamp.json").read_text() == stamp:
        return
    shutil.rmtree(PREBUILT, ignore_errors=True)
    wheel_virtualenv(PREBUILT)
    (PREBUILT / "stamp.json").write_text(stamp)


def production_commands() -> dict[str, list[str]]:
    commands = {"api-server": ["api-server"], "scheduler": ["scheduler"], "dag-processor": ["dag-processor"]}
    commands.update({name: ["triggerer"] for name in TRIGGERERS})
    commands.update({name: ["celery", "worker", "--concurrency", "4", "-H", name] for name in WORKERS})
    return commands


@contextlib.contextmanager
def production_stack(
    folder: Path,
    dags_folder: Path,
    env: dict[str, str] | None = None,
    python: Path | None = None,
    roles: tuple[FabRole, ...] = (),
    users: tuple[FabUser, ...] = (),
) -> Iterator[ProductionDeployment]:
    """The whole deployment, started; ``env`` is what every process shares besides Airflow's own settings
    (connections, the examples' settings). ``python`` reuses a virtualenv made by :func:`wheel_virtualenv`.
    The FAB auth manager's users are :data:`~tests.support.fab.ADMIN` (``stack.api``) and ``users``, with
    ``roles`` made for them."""
    python = python or wheel_python(folder)
    home = folder / "airflow-home"
    pythonpath = folder / "pythonpath"
    pythonpath.mkdir(parents=True, exist_ok=True)
    (pythonpath / "certyneo_test_hostnames.py").write_text(textwrap.dedent(HOSTNAMES))
    with postgres_cluster() as database, RedisServer() as redis:
        url = database.create_database("airflow")
        shared = {
            "PYTHONPATH": str(pythonpath),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis.port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{url}",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "certyneo_test_hostnames.hostname",
            "AIRFLOW__API__WORKERS": "2",
            "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
            "AIRFLOW_CONN_REDIS_DEFAULT": f"redis://127.0.0.1:{redis.port}/1",
            **(env or {}),
        }
        env_for: dict[str, dict[str, str | None]] = {}
        for name in WORKERS:
            env_for[name] = {
                HOSTNAME_ENV: name,
                STATE_DIR_ENV: str(home / "rate-state" / name),  # Redis is all the two hosts share
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            }
        for name in TRIGGERERS:
            env_for[name] = {
                HOSTNAME_ENV: name,
                STATE_DIR_ENV: str(home / "rate-state" / name),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            }
        stack = AirflowStack(
            home,
            dags_folder,
            shared,
            env_for=env_for,
            commands=production_commands(),
            python=str(python),
            prepare=lambda stack: create_roles_and_users(stack, roles, (ADMIN, *users)),
            credentials=(ADMIN.username, ADMIN.password),
        )
        with stack:
            yield ProductionDeployment(stack, database, redis, python)


if __name__ == "__main__":
    prebuild()
