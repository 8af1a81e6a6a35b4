"""Several worker processes (and "hosts") sharing one key, as a real deployment runs them; and a real
``redis-server`` for the hosts to share. Used by ``benchmarks/fleet.py`` and ``tests/governor``.

A "host" is a group of processes with its own state folder (so the host store is not shared between
groups): two groups that share nothing but Redis stand for two machines.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from airflow_provider_certyneo.emulator.server import free_port

CONN_ENV = "AIRFLOW_CONN_CERTYNEO_FLEET"


class RedisServer:
    """Debian's ``redis-server`` on a free loopback port, no persistence; can be killed and started again on
    the same port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="certyneo-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def conn_json(self) -> str:
        return json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": self.port})

    def start(self) -> RedisServer:
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.folder,
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class FleetResult:
    processes: int
    requests: int
    elapsed: float
    per_process: list[dict[str, Any]]


def run_fleet(
    conn_json: str, hosts: int, processes_per_host: int, requests_each: int, env: dict[str, str] | None = None
) -> FleetResult:
    """Start ``hosts × processes_per_host`` workers, each making ``requests_each`` requests on the key of
    ``conn_json`` once all are ready (imports done, connection read); the time from that common start to
    the last answer."""
    folders = [tempfile.mkdtemp(prefix=f"certyneo-host{h}-") for h in range(hosts)]
    workers = []
    try:
        for folder in folders:
            for _ in range(processes_per_host):
                worker_env = {
                    **os.environ,
                    **(env or {}),
                    CONN_ENV: conn_json,
                    "CERTYNEO_RATE_STATE_DIR": folder,
                }
                command = [sys.executable, __file__, str(requests_each)]
                workers.append(
                    subprocess.Popen(
                        command, env=worker_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
                    )
                )
        for worker in workers:
            assert worker.stdout is not None
            line = "…"
            while line and not line.startswith("FLEET ready"):
                line = worker.stdout.readline()
            if not line:
                raise RuntimeError("a fleet worker did not start")
        started = time.time()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        reports = []
        for worker in workers:
            out, _ = worker.communicate(timeout=600)
            if worker.returncode != 0:
                raise RuntimeError(f"a fleet worker failed (exit {worker.returncode}): {out[-2000:]}")
            reports.append(json.loads([x for x in out.splitlines() if x.startswith("FLEET {")][-1][6:]))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    return FleetResult(
        processes=len(workers),
        requests=len(workers) * requests_each,
        elapsed=max(r["finished"] for r in reports) - started,
        per_process=reports,
    )


def _worker(requests: int) -> None:
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="certyneo-fleet-"))
    from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

    with CertyneoHook("certyneo_fleet") as hook:
        hook.get_conn()
        for store in hook.governor().stores:
            if hasattr(store, "connect"):
                store.connect()
        print("FLEET ready", flush=True)
        sys.stdin.readline()
        for _ in range(requests):
            next(iter(hook.list_api_keys(page_size=1)))
        print("FLEET " + json.dumps({"finished": time.time(), "store": hook.governor().store.name}))


if __name__ == "__main__":
    _worker(int(sys.argv[1]))
