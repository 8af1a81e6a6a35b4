"""Bulk send of N contracts with the bulk pipeline, on a scaled clock (6,000/min, burst 200): each contract
with its own PDF (3 requests each), and all sharing one PDF (uploaded once: 2 requests each, plus one).

Prints ``name: value`` lines, for ``bulk`` (distinct PDFs) and ``bulk_same_pdf``:
- <name>_<N>_requests (the emulator's count: 3N and 2N + 1), <name>_floor_seconds = max(0, requests - burst)
  / rate;
- <name>_ratio_to_floor (limit 1.05);
- <name>_429s (limit 0);
- <name>_envelopes_sent_once / <name>_envelopes_sent_more_than_once, from the emulator's own counters.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from _emulator import contract_rows, emulator, print_pace

from airflow_provider_certyneo.bulk.journal import Journal
from airflow_provider_certyneo.bulk.manifest import contracts_from_list
from airflow_provider_certyneo.bulk.pipeline import send_all

N = int(os.environ.get("BULK_CONTRACTS", "1000"))
PER_MINUTE, BURST = 6000, 200


def scenario(name: str, distinct_pdfs: bool) -> None:
    work, rows = contract_rows(name, N, distinct_pdfs)
    contracts = contracts_from_list(rows)
    with emulator(per_minute=PER_MINUTE, burst=BURST) as (conn_id, control):
        started = time.monotonic()
        results = asyncio.run(send_all(conn_id, contracts, Journal(work / "journal.jsonl"), max_in_flight=64))
        elapsed = time.monotonic() - started
        counters = control.counters()
    failed = [r for r in results if r["error"]]
    requests = counters["requestsTotal"]
    print(f"{name}_{N}_requests: {requests}")
    print_pace(name, requests, elapsed, counters, PER_MINUTE, BURST)
    print(f"{name}_failed_rows: {len(failed)}")
    if failed:
        print(failed[:3], file=sys.stderr)


SCENARIOS = {"bulk": True, "bulk_same_pdf": False}

if __name__ == "__main__":
    if len(sys.argv) > 1:
        scenario(sys.argv[1], distinct_pdfs=SCENARIOS[sys.argv[1]])
    else:  # each in a fresh process, as each bulk run is its own task process
        for name in SCENARIOS:
            subprocess.run([sys.executable, __file__, name], check=True)
