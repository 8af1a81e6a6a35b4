"""Two thousand contracts on the first of the month, in a real Airflow deployment (api-server, scheduler,
dag-processor, triggerer; LocalExecutor, parallelism 8, the ``certyneo_api`` pool of 8), on a scaled clock:
the key at 6,000 requests/min, burst 200 (Certyneo's real 100/min would take an hour per scenario).

Scenarios, each a DAG run of the examples with 2,000 rows, each row its own PDF:
- ``scale_2000_mapped``: ``certyneo_bulk_mapped`` in its default batches (8 of 250, one bulk task each);
- ``scale_2000_bulk_operator``: ``certyneo_bulk_operator`` (preview, approval answered at once through the
  REST API, one bulk task).

Prints ``name: value`` lines per scenario, from the emulator's own request log:
- <name>_requests: API requests from the run's first to its last send (uploads, creates, sends, polls);
- <name>_floor_seconds = max(0, requests - burst) / rate, the token bucket's floor for them;
- <name>_elapsed_seconds (first request to last send) and <name>_ratio_to_floor (limit 1.05);
- <name>_429s (limit 0); <name>_envelopes_sent_once / _more_than_once;
- <name>_task_instances and <name>_run_seconds (trigger to success, signing included).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the deployment and manifest helpers of tests/support

from _emulator import print_pace  # noqa: E402

from airflow_provider_certyneo.emulator.handle import EmulatorControl, connection_json  # noqa: E402
from airflow_provider_certyneo.emulator.server import EmulatorProcess  # noqa: E402
from tests.support.airflow_runs import EXAMPLES  # noqa: E402
from tests.support.deployment import AirflowStack  # noqa: E402
from tests.support.manifests import write_manifest  # noqa: E402
from tests.support.polling import wait_until  # noqa: E402

N = int(os.environ.get("SCALE_CONTRACTS", "2000"))
PER_MINUTE, BURST = 6000, 200
KEY = "sk_test_" + "s" * 32
SEND = "POST /api/v1/envelopes/{id}/send"
# an answer within a second of the question meets Airflow's upstream deferral race (README,
# Troubleshooting): the scheduler fails the try and its retry asks again
HUMAN_DELAY = 5.0


def approve_when_asked(stack: AirflowStack, dag_id: str, run_id: str) -> None:
    """Answer the approval a few seconds after it is asked, as a person would (again if a retried try asks
    again)."""
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails"
    answered: set[int] = set()

    def approved() -> bool:
        (ti,) = [ti for ti in stack.api.task_instances(dag_id, run_id) if ti["task_id"] == "approve"]
        if ti["state"] == "awaiting_input" and ti["try_number"] not in answered:
            time.sleep(HUMAN_DELAY)  # a person reads the summary first
            stack.api.json("PATCH", path, json={"chosen_options": ["Approve"]})
            answered.add(ti["try_number"])
        return ti["state"] == "success"

    wait_until(approved, timeout=600, interval=1, what="the approval to be given", detail=stack.tail)


def pace_profile(log: list[dict[str, Any]], first: float, last: float) -> str:
    """Requests per second of the run (the key allows PER_MINUTE / 60): its first and last seconds, and the
    seconds in between that used under 90% of it, where a ratio above 1 comes from."""
    counts = Counter(int(entry["at"] - first) for entry in log if entry["at"] <= last)
    seconds = [counts.get(second, 0) for second in range(int(last - first) + 1)]
    allowed = PER_MINUTE / 60
    slow = {second: count for second, count in enumerate(seconds[5:-5], start=5) if count < 0.9 * allowed}
    return f"first {seconds[:5]}, last {seconds[-5:]}, under 90% in between {slow}"


def scenario(name: str, dag_id: str, stack: AirflowStack, control: EmulatorControl, manifest: Path) -> None:
    control.reset()
    started = time.monotonic()
    run_id = stack.api.trigger(dag_id, {"manifest": str(manifest)})
    if dag_id == "certyneo_bulk_operator":
        approve_when_asked(stack, dag_id, run_id)
    state = stack.api.wait_for_run(dag_id, run_id, timeout=3600)
    run_seconds = time.monotonic() - started
    tis = stack.api.task_instances(dag_id, run_id)
    log: list[dict[str, Any]] = control.requests()
    counters = control.counters()
    sends = [entry for entry in log if entry["route"] == SEND]
    first, last = log[0]["at"], sends[-1]["at"]
    requests = sum(1 for entry in log if entry["at"] <= last)
    print(f"{name}_run_state: {state}")
    print(f"{name}_requests: {requests}")
    print_pace(name, requests, last - first, counters, PER_MINUTE, BURST)
    limited = [entry for entry in log if entry["status"] == 429]
    if limited:  # where they fell: which routes, which clients, how far into the run
        by_route = Counter(entry["route"] for entry in limited)
        by_agent = Counter(entry["userAgent"] for entry in limited)
        print(f"{name}_429s_by_route: {dict(by_route)}", file=sys.stderr)
        print(f"{name}_429s_by_client: {dict(by_agent)}", file=sys.stderr)
        print(f"{name}_429s_at_seconds: {[round(e['at'] - first, 1) for e in limited][:20]}", file=sys.stderr)
    print(f"{name}_where_time_went: {pace_profile(log, first, last)}", file=sys.stderr)
    print(f"{name}_task_instances: {len(tis)}")
    print(f"{name}_run_seconds: {run_seconds:.1f}")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="certyneo-bench-scale-"))
    manifests = {
        "scale_2000_mapped": write_manifest(work / "mapped", N, digits=4),
        "scale_2000_bulk_operator": write_manifest(work / "operator", N, digits=4, subject="Contrat unique"),
    }
    with EmulatorProcess(KEY, per_minute=PER_MINUTE, burst=BURST) as emulator:
        control = EmulatorControl(emulator.base_url)
        control.configure(autoSignAfter=1)
        env = {
            "AIRFLOW_CONN_CERTYNEO_DEFAULT": connection_json(
                emulator.base_url, KEY, rate_limit_per_minute=PER_MINUTE, rate_limit_burst=BURST
            ),
            "CERTYNEO_POLL_INTERVAL": "2",
        }
        with AirflowStack(work / "airflow-home", EXAMPLES, env) as stack:
            stack.api.set_pool("certyneo_api", 8, "Certyneo key")
            for dag_id in ("certyneo_bulk_mapped", "certyneo_bulk_operator"):
                stack.api.wait_for_dag(dag_id)
                stack.api.unpause(dag_id)
            scenario(
                "scale_2000_mapped", "certyneo_bulk_mapped", stack, control, manifests["scale_2000_mapped"]
            )
            scenario(
                "scale_2000_bulk_operator",
                "certyneo_bulk_operator",
                stack,
                control,
                manifests["scale_2000_bulk_operator"],
            )
        control.close()


if __name__ == "__main__":
    main()
