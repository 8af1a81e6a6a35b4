"""Runs the emulator on a real socket, in the foreground (the console script) or in a background thread
(the pytest fixture and the demo)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from airflow_provider_certyneo.emulator.app import TRANSPORT, create_app
from airflow_provider_certyneo.emulator.config import EmulatorConfig
from airflow_provider_certyneo.emulator.models import new_key_secret


class _QuietLostResponses(logging.Filter):
    """A lost-response fault ends a request without an answer on purpose; uvicorn need not shout."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without starting response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietLostResponses())


class TransportAwareH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, handing each request its connection so faults can drop it unanswered."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app_state = {**self.app_state, TRANSPORT: transport}


def free_port(host: str = "127.0.0.1") -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class EmulatorServer:
    """One emulator on ``host:port``. ``keys`` default to one fresh test key and one live key."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        keys: list[str] | None = None,
        config: EmulatorConfig | None = None,
        log_level: str = "warning",
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.keys = keys or [new_key_secret("test"), new_key_secret("live")]
        self.config = config or EmulatorConfig()
        self.app = create_app(self.config, self.keys)
        self._uvicorn = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host=self.host,
                port=self.port,
                http=TransportAwareH11,
                log_level=log_level,
                access_log=False,
                lifespan="on",
                timeout_keep_alive=30,
                timeout_graceful_shutdown=1,
                date_header=False,
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def test_key(self) -> str:
        return next(k for k in self.keys if k.startswith("sk_test_"))

    @property
    def live_key(self) -> str | None:
        return next((k for k in self.keys if k.startswith("sk_live_")), None)

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    def run(self) -> None:
        """Serve in the foreground until interrupted."""
        self._uvicorn.run()

    def start(self, timeout: float = 15.0) -> EmulatorServer:
        """Serve in a daemon thread; return once the socket accepts connections. After ``stop()`` this
        serves again on the same port with every object kept, as a restarted service would."""
        if self._uvicorn.started or self._uvicorn.should_exit:
            self._uvicorn = uvicorn.Server(self._uvicorn.config)
        self._thread = threading.Thread(target=self._uvicorn.run, name="certyneo-emulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the Certyneo emulator did not start on {self.base_url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def restart(self) -> None:
        """Stop serving and serve again on the same port, keeping every object (as after a crash-restart)."""
        self.stop()
        self.start()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until_serving(base_url: str, timeout: float = 15.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base_url}/_emulator/health", timeout=1).is_success:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the emulator at {base_url} did not answer within {timeout:.0f} s")
        time.sleep(0.05)


class EmulatorProcess:
    """``certyneo-emulator`` in a child process: its own GIL, so nothing it does slows the caller's threads
    or event loop; and it can be killed (as a crash) and started again on the same port. With
    ``state_file`` it serves on from the objects it had, as a restarted service would."""

    def __init__(
        self,
        key: str,
        per_minute: float = 100.0,
        burst: int = 200,
        host: str = "127.0.0.1",
        state_file: str | None = None,
    ) -> None:
        self.key = key
        self.host = host
        self.port = free_port(host)
        self.arguments = ["--rate-per-minute", str(per_minute), "--burst", str(burst)]
        if state_file:
            self.arguments += ["--state-file", state_file]
        self._process: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmulatorProcess:
        command = [sys.executable, "-m", "airflow_provider_certyneo.emulator.cli"]
        command += ["--host", self.host, "--port", str(self.port), "--key", self.key, *self.arguments]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        first_line = self._process.stdout.readline()
        if "Certyneo emulator on" not in first_line:
            self.stop()
            raise RuntimeError(f"the emulator process did not start: {first_line!r}")
        wait_until_serving(self.base_url)
        return self

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, open connections dropped (what a crashed host does)."""
        if self._process is not None:
            self._process.kill()
            self._reap()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._reap()

    def _reap(self) -> None:
        assert self._process is not None
        self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def emulator_process(
    key: str, per_minute: float = 100.0, burst: int = 200, host: str = "127.0.0.1"
) -> Iterator[str]:
    """Run ``certyneo-emulator`` in a child process and yield its base URL; stop it on exit."""
    with EmulatorProcess(key, per_minute, burst, host) as process:
        yield process.base_url
