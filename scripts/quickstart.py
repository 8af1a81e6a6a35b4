"""The README's main command: the quick-start DAG, end to end, against the bundled emulator.

Starts a Certyneo emulator (it signs every envelope two seconds after it is sent), prepares a throwaway
AIRFLOW_HOME with SQLite, runs ``airflow dags test certyneo_quickstart`` in a child process with the
``certyneo_default`` connection pointing at the emulator, then shows where the signed PDF and the audit
trail landed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from airflow_provider_certyneo.emulator import EmulatorConfig, EmulatorServer
from airflow_provider_certyneo.emulator.handle import connection_json

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    work = Path(os.environ.get("CERTYNEO_DEMO_DIR") or tempfile.mkdtemp(prefix="certyneo-quickstart-"))
    archive = work / "archive"
    home = work / "airflow-home"
    home.mkdir(parents=True, exist_ok=True)
    server = EmulatorServer(config=EmulatorConfig(auto_sign_after=2.0)).start()
    print(f"Certyneo emulator on {server.base_url} (signs each envelope 2 s after it is sent)", flush=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW_CONN_CERTYNEO_DEFAULT": connection_json(server.base_url, server.test_key),
        "CERTYNEO_ARCHIVE": f"file://{archive}",
        "CERTYNEO_POLL_INTERVAL": "1",
    }
    airflow = [sys.executable, "-m", "airflow"]
    try:
        print("Preparing a throwaway Airflow database (SQLite)…", flush=True)
        subprocess.run([*airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        print("Running: airflow dags test certyneo_quickstart", flush=True)
        run = subprocess.run(
            [*airflow, "dags", "test", "certyneo_quickstart"], env=env, capture_output=True, text=True
        )
        (work / "dags-test.log").write_text(run.stdout + run.stderr)
    finally:
        server.stop()
    signed = sorted(archive.rglob("*-signed-document.pdf"))
    trails = sorted(archive.rglob("*-audit-trail.pdf"))
    if run.returncode != 0 or not signed or not trails:
        print(run.stdout[-4000:] + run.stderr[-4000:], file=sys.stderr)
        print(f"The quick start failed; full log: {work / 'dags-test.log'}", file=sys.stderr)
        return 1
    print()
    print("The contract was uploaded, sent, signed and archived:")
    print(f"  signed PDF:   {signed[0]}")
    print(f"  audit trail:  {trails[0]}")
    print(f"  Airflow log:  {work / 'dags-test.log'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
