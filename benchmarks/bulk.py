"""Bulk send of N contracts with the bulk pipeline, on a scaled clock (6,000/min, burst 200).

Prints ``name: value`` lines:
- bulk_contracts, bulk_requests (3 per contract), bulk_floor_seconds = max(0, 3N - burst) / rate;
- bulk_time_ratio_to_floor (limit 1.05);
- bulk_429s (limit 0);
- bulk_envelopes_sent_once / bulk_envelopes_sent_more_than_once, from the emulator's own counters.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from _emulator import contract_rows, emulator

from airflow_provider_certyneo.bulk.journal import Journal
from airflow_provider_certyneo.bulk.manifest import contracts_from_list
from airflow_provider_certyneo.bulk.pipeline import send_all

N = int(os.environ.get("BULK_CONTRACTS", "1000"))
PER_MINUTE, BURST = 6000, 200


def main() -> None:
    work, rows = contract_rows("bulk", N)
    contracts = contracts_from_list(rows)
    with emulator(per_minute=PER_MINUTE, burst=BURST) as (conn_id, control):
        started = time.monotonic()
        results = asyncio.run(send_all(conn_id, contracts, Journal(work / "journal.jsonl"), max_in_flight=64))
        elapsed = time.monotonic() - started
        counters = control.counters()
    failed = [r for r in results if r["error"]]
    floor = max(0, 3 * N - BURST) * 60 / PER_MINUTE
    sends = counters["sends"]
    print(f"bulk_contracts: {N}")
    print(f"bulk_requests: {counters['requestsTotal']}")
    print(f"bulk_floor_seconds: {floor:.2f}")
    print(f"bulk_elapsed_seconds: {elapsed:.2f}")
    print(f"bulk_time_ratio_to_floor: {elapsed / floor:.3f}")
    print(f"bulk_429s: {counters['rateLimited']}")
    print(f"bulk_failed_rows: {len(failed)}")
    print(f"bulk_envelopes_sent_once: {sum(1 for n in sends.values() if n == 1)}")
    print(f"bulk_envelopes_sent_more_than_once: {sum(1 for n in sends.values() if n > 1)}")
    if failed:
        print(failed[:3], file=sys.stderr)


if __name__ == "__main__":
    main()
