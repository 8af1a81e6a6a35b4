"""Where a key's bucket lives for one process (memory) or for every process of one machine (a file).

Each store applies :func:`.rule.apply` atomically and answers the wait. ``apply(op, blocking=False)``
returns None instead of waiting for a lock another process holds, so an event loop never blocks on it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import tempfile
import threading
import time
import zlib
from pathlib import Path

from airflow_provider_certyneo.governor.rule import Op, Rule, State, apply

STATE_DIR_ENV = "CERTYNEO_RATE_STATE_DIR"
_RECORD = struct.Struct("<4s4xddI4x")
_MAGIC = b"CRT1"


class ProcessStore:
    """The bucket in this process's memory: exact for one process, blind to the others."""

    name = "process"
    blocking_io = False

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self._state: State | None = None
        self._lock = threading.Lock()

    def apply(self, op: Op, blocking: bool = True) -> float | None:
        with self._lock:
            self._state, wait = apply(self.rule, self._state, time.monotonic(), op)
            return wait


def state_dir() -> Path:
    """The per-user runtime folder shared by the processes of this machine (``$CERTYNEO_RATE_STATE_DIR``,
    else ``$XDG_RUNTIME_DIR/certyneo``, else ``<tmp>/certyneo-<uid>``)."""
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "certyneo"
    return Path(tempfile.gettempdir()) / f"certyneo-{os.getuid()}"


class HostStore:
    """The bucket in a 32-byte file under an exclusive ``flock``: every process of this machine that uses the
    key shares it. The clock is ``CLOCK_MONOTONIC``, which all processes of one machine share.

    Garbage in the file (a bad checksum) or a date in the future rebuilds an empty bucket; a file deleted
    while in use is recreated, empty if this process had used the deleted one. Never raises for that."""

    name = "host"
    blocking_io = False

    def __init__(self, rule: Rule, name: str, folder: Path | None = None) -> None:
        self.rule = rule
        self.path = (folder or state_dir()) / f"{name}.bucket"
        self._fd: int | None = None
        self._used = False
        self._lock = threading.Lock()
        self.rebuilt = 0

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    def _lock_file(self, blocking: bool) -> int | None:
        """The open, locked file, reopened when the one held was deleted or replaced."""
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return None
                raise
            if os.fstat(fd).st_nlink > 0:
                return fd
            fcntl.flock(fd, fcntl.LOCK_UN)
            self.close()

    def _read(self, fd: int, now: float) -> State | None:
        raw = os.pread(fd, _RECORD.size, 0)
        if not raw:
            return State(0.0, now) if self._used else None
        if len(raw) == _RECORD.size:
            magic, tokens, updated, checksum = _RECORD.unpack(raw)
            if magic == _MAGIC and checksum == zlib.crc32(raw[:24]):
                return State(tokens, updated)
        self.rebuilt += 1
        return State(0.0, now)

    def apply(self, op: Op, blocking: bool = True) -> float | None:
        if not self._lock.acquire(blocking=blocking):
            return None
        try:
            fd = self._lock_file(blocking)
            if fd is None:
                return None
            try:
                now = time.monotonic()
                state, wait = apply(self.rule, self._read(fd, now), now, op)
                head = _RECORD.pack(_MAGIC, state.tokens, state.updated, 0)[:24]
                os.pwrite(fd, _RECORD.pack(_MAGIC, state.tokens, state.updated, zlib.crc32(head)), 0)
                self._used = True
                return wait
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
