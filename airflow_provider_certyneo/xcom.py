"""The XCom keys the Certyneo tasks write, in one place: the envelope link and the Signatures view read
them back, so writer and readers cannot drift apart."""

from __future__ import annotations

ENVELOPE_ID = "envelope_id"  # the envelope a task made or waited on
CONN_ID = "certyneo_conn_id"  # the connection it used (the Signatures view reads Certyneo through it)
ENVELOPE_URL = "certyneo_envelope_url"  # its dashboard page (the "Certyneo envelope" link)
RESULTS = "results"  # a bulk send's rows: {row, envelope_id, status, error, retryable}
SUMMARY = "summary"  # a bulk wait's outcome: {completed, failed, pending}
DOCUMENT = "document"  # an upload's document record
PREVIEW = "preview"  # a bulk preview's summary (pushed also when it fails, for its problems)
FINGERPRINT = "fingerprint"  # a bulk preview's digests of what it saw: {sha256, manifest_sha256, pdfs}
# What the Signatures view reads to find a run's envelopes.
ENVELOPE_KEYS = (ENVELOPE_ID, CONN_ID, ENVELOPE_URL, RESULTS)
