"""A real ``redis-server`` (Debian's package) for the tests and benchmarks of the shared rate governor."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile

from airflow_provider_certyneo.emulator.server import free_port
from tests.support.polling import wait_until


def require_redis_server() -> None:
    """Skip the calling test when ``redis-server`` is not installed, only outside CI (``make test`` installs
    it; in CI a missing server fails the test)."""
    import pytest  # here, so that the benchmarks can use the server without pytest

    if shutil.which("redis-server") is None:
        message = "redis-server is not installed: `make test` installs it (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


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
        try:
            wait_until(self._answers, timeout=10, interval=0.05, what=f"redis-server on port {self.port}")
        except AssertionError as exc:
            self.kill()
            raise RuntimeError(f"redis-server did not answer on port {self.port}") from exc
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as probe:
                probe.sendall(b"PING\r\n")
                return probe.recv(16).startswith(b"+PONG")
        except OSError:
            return False

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
