"""What importing the provider's operators adds to a DAG file's parse time.

In 9 fresh interpreters, with Airflow already loaded (as in a DAG processor): parse a DAG file that uses
only Airflow's SDK, then one that also imports every Certyneo operator and the sensor (first import).
Prints ``name: value`` lines:
- parse_baseline_ms / parse_with_provider_ms: medians;
- provider_parse_overhead_ms: the difference (limit 100 ms);
- provider_parse_overhead_ratio_to_limit: that over 100 ms (must stay below 1);
- provider_parse_heavy_modules: heavy modules the provider pulls in at parse time (httpx, the hooks; 0).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BASELINE = """
import pendulum
from airflow.sdk import DAG, task
with DAG("baseline", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
    @task
    def noop() -> None: ...
    noop()
"""

WITH_PROVIDER = (
    BASELINE
    + """
from airflow_provider_certyneo.operators.bulk import CertyneoBulkSendOperator
from airflow_provider_certyneo.operators.document import (
    CertyneoDownloadAuditTrailOperator,
    CertyneoDownloadSignedDocumentOperator,
    CertyneoUploadDocumentOperator,
)
from airflow_provider_certyneo.operators.envelope import (
    CertyneoCreateEnvelopeOperator,
    CertyneoSendEnvelopeOperator,
    CertyneoVoidEnvelopeOperator,
)
from airflow_provider_certyneo.sensors.envelope import CertyneoEnvelopeSensor
with DAG("with_provider", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
    up = CertyneoUploadDocumentOperator(task_id="u", source="x.pdf")
    cr = CertyneoCreateEnvelopeOperator(task_id="c", subject="s", document_ids=up.output, recipients=[])
    CertyneoSendEnvelopeOperator(task_id="s", envelope_id=cr.output, wait_for_completion=True)
    CertyneoEnvelopeSensor(task_id="w", envelope_id=cr.output)
"""
)

TIMER = """
import runpy, sys, time
runpy.run_path(sys.argv[1])  # warm: Airflow itself is loaded in a DAG processor before any DAG file
started = time.perf_counter()
runpy.run_path(sys.argv[1])
baseline = time.perf_counter() - started
before = set(sys.modules)
started = time.perf_counter()
runpy.run_path(sys.argv[2])
with_provider = time.perf_counter() - started
watched = ("httpx", "airflow_provider_certyneo.hooks.certyneo", "airflow_provider_certyneo.triggers.envelope",
           "pypdf", "fastapi", "uvicorn")
heavy = [m for m in watched if m in sys.modules and m not in before]
print(baseline, with_provider, len(heavy), ",".join(heavy) or "-")
"""


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="certyneo-parse-"))
    baseline, provider = folder / "baseline.py", folder / "with_provider.py"
    baseline.write_text(BASELINE)
    provider.write_text(WITH_PROVIDER)
    env = {**os.environ, "AIRFLOW_HOME": str(folder / "home")}
    base_times, provider_times, heavy, heavy_names = [], [], 0, "-"
    for _ in range(9):
        out = subprocess.run(
            [sys.executable, "-c", TIMER, str(baseline), str(provider)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.split()
        base_times.append(float(out[0]))
        provider_times.append(float(out[1]))
        heavy, heavy_names = int(out[2]), out[3]
    base, with_provider = statistics.median(base_times), statistics.median(provider_times)
    overhead_ms = (with_provider - base) * 1000
    print(f"parse_baseline_ms: {base * 1000:.1f}")
    print(f"parse_with_provider_ms: {with_provider * 1000:.1f}")
    print(f"provider_parse_overhead_ms: {overhead_ms:.1f}")
    print(f"provider_parse_overhead_ratio_to_limit: {overhead_ms / 100:.2f}")
    print(f"provider_parse_heavy_modules: {heavy} ({heavy_names})")


if __name__ == "__main__":
    main()
