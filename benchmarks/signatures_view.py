"""What the Signatures view costs for a run of 2,000 envelopes, at Certyneo's real rate (100/min, burst
200; the view paces itself at a tenth of it).

Prints ``name: value`` lines:
- signatures_view_2000_ms_first: the run page's first look (XCom scan, one list pass over the envelopes
  changed since the run started, 20 requests, paced; rendering);
- signatures_view_2000_requests_first: the Certyneo requests of that look (the emulator's request log);
- signatures_view_2000_ms_warm: the page again within the cache window (no request);
- signatures_view_2000_ms_later: a look after the window, one envelope signed meanwhile (right after the
  first look, so it waits for one token of the view's share: 6 s);
- signatures_view_2000_requests_later: its requests (only what changed since the last look);
- signatures_view_waiting_2000_ms_first / _requests_first: Browse › Signatures with 1,494 waiting, opened on
  its own (after a run page's first look it waits for the view's share: 6 s a request).

The emulator runs in this process (its store is filled directly: 2,000 envelopes sent over the last hour,
some signed, declined, expired), against a real Airflow metadata database (SQLite) and a real DAG run whose
XComs name the envelopes (four bulk batches of 500). The view is called as its route calls it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOME = tempfile.mkdtemp(prefix="certyneo-bench-view-")
os.environ["AIRFLOW_HOME"] = HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{HOME}/airflow.db"
os.environ["AIRFLOW__CERTYNEO__VIEW_CACHE_SECONDS"] = "30"
os.environ["CERTYNEO_RATE_STATE_DIR"] = tempfile.mkdtemp(prefix="certyneo-bench-view-rate-")  # STATE_DIR_ENV

sys.path.insert(0, str(ROOT))  # the seeding helpers of tests/support

from airflow_provider_certyneo.emulator.config import EmulatorConfig  # noqa: E402
from airflow_provider_certyneo.emulator.handle import EmulatorControl, connection_json  # noqa: E402
from airflow_provider_certyneo.emulator.server import EmulatorServer  # noqa: E402

COUNT = 2_000


def main() -> None:
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True
    )
    if migrate.returncode != 0:
        raise SystemExit(migrate.stderr[-3000:])
    server = EmulatorServer(config=EmulatorConfig())
    server.start()
    control = EmulatorControl(server.base_url)
    try:
        control.configure(ratePerMinute=100.0, burst=200)
        os.environ["AIRFLOW_CONN_CERTYNEO_DEFAULT"] = connection_json(server.base_url, server.test_key)
        measure(server, control)
    finally:
        control.close()
        server.stop()


def measure(server: EmulatorServer, control: EmulatorControl) -> None:
    from airflow_provider_certyneo.plugins import signatures
    from airflow_provider_certyneo.plugins.pages import run_html, waiting_html
    from tests.support.signatures import at_past, bulk_run, seed_envelopes

    store = server.runtime.store
    ids = seed_envelopes(store, COUNT, server.base_url)
    for envelope_id in ids[200:203]:
        at_past(store, 1000, lambda e=envelope_id: store.decline_next(e, None, "Le salaire est faux"))
    for envelope_id in ids[300:302]:
        at_past(store, 900, lambda e=envelope_id: store.expire(e))
    for envelope_id in ids[500:1000]:
        at_past(store, 800, lambda e=envelope_id: store.sign_next(e))
    run = bulk_run("signatures_view_benchmark", ids)

    def last() -> int:
        log = control.requests()
        return int(log[-1]["seq"]) if log else 0

    def look(name: str, call: object, requests: bool = True) -> None:
        seq = last()
        started = time.perf_counter()
        call()  # type: ignore[operator]
        ms = (time.perf_counter() - started) * 1000
        base, _, kind = name.rpartition("_")
        print(f"{base}_ms_{kind}: {ms:.0f}")
        if requests:
            print(f"{base}_requests_{kind}: {len(control.requests(since=seq))}")

    page = ("signatures_view_benchmark", run.run_id)
    look("signatures_view_2000_first", lambda: run_html(*page))
    look("signatures_view_2000_warm", lambda: run_html(*page))
    store.sign_next(ids[1999])
    signatures.LOOKS.expire()
    look("signatures_view_2000_later", lambda: run_html(*page))
    # Browse › Signatures opened on its own (a fresh view bucket): right after a run page's first look it
    # would wait for its share instead (15 requests at 6 s each once the view's burst of 19 is spent)
    from airflow_provider_certyneo.governor.governor import forget_governors

    forget_governors()
    os.environ["CERTYNEO_RATE_STATE_DIR"] = tempfile.mkdtemp(prefix="certyneo-bench-view-rate-")
    look("signatures_view_waiting_2000_first", lambda: waiting_html({page[0]}))
    print(f"signatures_view_2000_429s: {control.counters()['rateLimited']}")


if __name__ == "__main__":
    main()
