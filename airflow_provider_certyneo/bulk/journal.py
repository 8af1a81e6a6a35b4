"""The bulk task's progress journal: one JSON line per step and row, so that a retried or re-run task
resumes where the last attempt stopped and sends no contract twice.

It lives where the task says (``journal=``); by default next to the manifest, named after the DAG run, so
that a retry on another worker finds it when the manifest is on shared or object storage. Local files are
appended and synced after every line; object storage cannot append, so there the whole journal is
rewritten at most once a second and at the end (what a crash loses is found again on the server).
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from typing import Any

from airflow_provider_certyneo.client.files import as_path
from airflow_provider_certyneo.client.timestamps import rfc3339


class Journal:
    """The journal at ``location``; ``read_only`` (a preview) reads it and writes nothing, not even its
    start line, so that a preview leaves no trace a later run could mistake for an earlier try."""

    def __init__(self, location: Any, read_only: bool = False) -> None:
        self.path = as_path(location)
        self.read_only = read_only
        self.local = not hasattr(self.path, "fs")
        self.rows: dict[str, dict[str, Any]] = {}
        self.started: str | None = None
        self._lines: list[str] = []
        self._flushed = 0.0
        self._load()
        if self.started is None and not read_only:
            self.started = rfc3339(datetime.now(timezone.utc))
            self._append({"started": self.started})

    def _load(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("r", encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                self._lines.append(line.rstrip("\n"))
                if "started" in entry and self.started is None:
                    self.started = entry["started"]
                elif "row" in entry:
                    self.rows.setdefault(entry["row"], {}).update(entry)

    def record(self, row: str, **fields: Any) -> None:
        entry = {"row": row, **fields}
        self.rows.setdefault(row, {}).update(entry)
        self._append(entry)

    def _append(self, entry: dict[str, Any]) -> None:
        if self.read_only:
            raise RuntimeError(f"journal {self.path} was opened read-only (a preview writes nothing)")
        line = json.dumps(entry, separators=(",", ":"))
        self._lines.append(line)
        if self.local:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        elif time.monotonic() - self._flushed >= 1.0:
            self.flush()

    def flush(self) -> None:
        if self.local or self.read_only:
            return
        with self.path.open("w", encoding="utf-8") as handle:
            handle.write("\n".join(self._lines) + "\n")
        self._flushed = time.monotonic()
