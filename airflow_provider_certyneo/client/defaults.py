"""A ``certyneo`` connection's defaults, written once: the settings, the retry policy, the connection form
and the hooks read them from here. Cheap to import (no Airflow), as the connection form needs."""

from __future__ import annotations

CONN_ID = "certyneo_default"
BASE_URL = "https://certyneo.com"
TIMEOUT = 30.0
MAX_RETRIES = 6
RATE_LIMIT_PER_MINUTE = 100.0
RATE_LIMIT_BURST = 200
RATE_LIMIT_STORE = "host"
MAX_RATE_LIMIT_WAIT = 900.0
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
VERIFY_SSL = True
# The "Certyneo envelope" link and the Signatures view: {base_url} (the connection's) and {envelope_id}.
DASHBOARD_URL_TEMPLATE = "{base_url}/app/envelopes/{envelope_id}"
# The share of the key's rate limit that polling may spend (the waiting triggers and the asset watcher of a
# key together, across triggerers), so that polling never starves the tasks that send contracts.
POLL_SHARE = 0.5
# Seconds between two progress lines of a bulk send or a bulk wait (only when a count moved).
PROGRESS_INTERVAL = 5.0
