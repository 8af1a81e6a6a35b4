"""Several worker processes (and "hosts") sharing one key, as a real deployment runs them (the hosts share a
``redis-server`` from ``tests.support.redis``). Used by ``benchmarks/fleet.py`` and ``tests/governor``.

A "host" is a group of processes with its own state folder (so the host store is not shared between
groups): two groups that share nothing but Redis stand for two machines.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

from airflow_provider_certyneo.governor.stores import STATE_DIR_ENV

CONN_ENV = "AIRFLOW_CONN_CERTYNEO_FLEET"
PRELOAD = "airflow_provider_certyneo.hooks.certyneo"


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
    the last answer.

    The workers are separate processes forked from a server that has imported the hook once, as
    Airflow's executors fork task processes from a parent that has imported Airflow: they share nothing
    but what the key's governor shares (the state file of their "host", or Redis)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([PRELOAD])
    folders = [tempfile.mkdtemp(prefix=f"certyneo-host{h}-") for h in range(hosts)]
    count = hosts * processes_per_host
    ready, go, results = context.Barrier(count + 1), context.Event(), context.Queue()
    workers = [
        context.Process(
            target=_worker,
            args=(
                {**os.environ, **(env or {}), CONN_ENV: conn_json, STATE_DIR_ENV: folder},
                requests_each,
                ready,
                go,
                results,
            ),
            daemon=True,
        )
        for folder in folders
        for _ in range(processes_per_host)
    ]
    try:
        for worker in workers:
            worker.start()
        try:
            ready.wait(timeout=300)
        except threading.BrokenBarrierError:
            raise RuntimeError(f"a fleet worker did not start: {results.get(timeout=10)}") from None
        started = time.time()
        go.set()
        reports = [results.get(timeout=600) for _ in workers]
        failed = [r["error"] for r in reports if "error" in r]
        if failed:
            raise RuntimeError(f"{len(failed)} fleet workers failed: {failed[0]}")
        for worker in workers:
            worker.join(timeout=30)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    return FleetResult(
        processes=len(workers),
        requests=len(workers) * requests_each,
        elapsed=max(r["finished"] for r in reports) - started,
        per_process=reports,
    )


def _worker(env: dict[str, str], requests: int, ready: Any, go: Any, results: Any) -> None:
    """One worker process: its own connection and governor, waits for the common start, reports when its
    last answer came."""
    try:
        os.environ.update(env)
        from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

        with CertyneoHook("certyneo_fleet") as hook:
            hook.get_conn()
            for store in hook.governor().stores:
                if hasattr(store, "connect"):
                    store.connect()
            ready.wait(timeout=300)
            go.wait(timeout=300)
            for _ in range(requests):
                next(iter(hook.list_api_keys(page_size=1)))
            results.put({"finished": time.time(), "store": hook.governor().store.name, "pid": os.getpid()})
    except BaseException as exc:
        results.put({"error": f"{type(exc).__name__}: {exc}", "finished": time.time()})
        ready.abort()
        raise
