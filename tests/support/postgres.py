"""A throwaway PostgreSQL cluster (Debian's ``postgresql`` package) for tests and benchmarks.

``with postgres_cluster() as cluster: url = cluster.create_database("airflow")`` gives a SQLAlchemy URL
(``postgresql+psycopg2://postgres@127.0.0.1:PORT/airflow``, no password: the cluster trusts loopback) to a
cluster in a fresh data folder on a free loopback port, stopped and deleted on exit, also when the test
fails. ``initdb`` and ``pg_ctl`` refuse to run as root: as root they run as the ``postgres`` user (which
the Debian package creates) on a folder given to it. ``settings`` are server settings (``-c name=value``);
the default trades durability for speed (``fsync=off``), as a throwaway cluster may; pass ``settings={}``
for a server configured as shipped (a benchmark measuring commits).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from airflow_provider_certyneo.emulator.server import free_port
from tests.support.polling import wait_until

FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
USER = "postgres"


def postgres_bin_dir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on ``PATH``, else Debian's newest
    ``/usr/lib/postgresql/N/bin``."""
    on_path = shutil.which("pg_ctl")
    if on_path is not None and shutil.which("initdb") is not None:
        return Path(on_path).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name),
        reverse=True,
    )
    return versions[0].parent if versions else None


def require_postgres() -> None:
    """Skip the calling test when PostgreSQL or its driver is missing, only outside CI (``make test``
    installs both; in CI a missing server fails the test)."""
    import pytest  # here, so that the benchmarks can use the cluster without pytest

    missing = []
    if postgres_bin_dir() is None:
        missing.append("the PostgreSQL server (apt-get install postgresql)")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        missing.append("psycopg2 (the [test] extra's psycopg2-binary)")
    if missing:
        message = f"{' and '.join(missing)} not installed: `make test` installs them"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


class PostgresCluster:
    """One ``postgres`` server on its own data folder and port, loopback only, trust authentication."""

    def __init__(self, settings: Mapping[str, str] | None = None) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin_dir = bin_dir
        self.settings = dict(FAST_SETTINGS if settings is None else settings)
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="certyneo-postgres-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._started = False

    def _run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", USER, "--"] if os.geteuid() == 0 else []
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=timeout, cwd=self.folder
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        return result

    def start(self) -> PostgresCluster:
        if os.geteuid() == 0:
            shutil.chown(self.folder, USER, USER)
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.folder}"]
        options += [f"-c {name}={value}" for name, value in self.settings.items()]
        atexit.register(self.stop)  # the process dying mid-test still stops the server
        self._started = True
        pg_ctl = str(self.bin_dir / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", " ".join(options), "-w", "start")
        wait_until(self._answers, timeout=30, interval=0.1, what=f"PostgreSQL on port {self.port}")
        return self

    def _answers(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres").close()
            return True
        except psycopg2.OperationalError:
            return False

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its SQLAlchemy URL."""
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)

    def stop(self) -> None:
        """Stops the server (immediately: nothing in it is kept) and deletes its folder; idempotent."""
        if self._started:
            self._started = False
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        atexit.unregister(self.stop)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def postgres_cluster(settings: Mapping[str, str] | None = None) -> Iterator[PostgresCluster]:
    with PostgresCluster(settings) as cluster:
        yield cluster
