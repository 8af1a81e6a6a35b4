"""What verifying evidence costs: per contract, and for a 100-contract archive against downloading alone.

Prints ``name: value`` lines:
- evidence_contracts: contracts measured (COMPLETED envelopes on the emulator, two signers each);
- evidence_verify_ms_per_contract: median time to verify one contract's evidence in process (both PAdES
  seals with their chains and timestamps, the audit trail's attachment, hashes and signers);
- evidence_download_seconds: downloading every signed PDF and audit trail with the hook, nothing else;
- evidence_archive_seconds: CertyneoArchiveEvidenceOperator on the same envelopes (envelope and document
  records read, both PDFs downloaded, verified, evidence.json written);
- evidence_bulk_100_ratio_to_download: the second over the first, same run, same emulator.

The emulator (its own process, no rate limit in the way) has sealed every PDF before anything is measured:
Certyneo serves sealed documents; the cost of sealing is not the client's.
"""

from __future__ import annotations

import hashlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _emulator import emulator

from airflow_provider_certyneo.emulator.pdf import text_pdf
from airflow_provider_certyneo.evidence.trust import load_trust_roots
from airflow_provider_certyneo.evidence.verify import verify_evidence
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

CONTRACTS = 100
SIGNERS = [
    {"email": "client@example.com", "name": "Client", "role": "SIGNER"},
    {"email": "rh@example.com", "name": "RH", "role": "SIGNER"},
]


def completed_envelopes(hook: CertyneoHook, control: Any, work: Path) -> list[str]:
    ids = []
    for i in range(CONTRACTS):
        pdf = work / f"contract-{i}.pdf"
        pdf.write_bytes(text_pdf(f"Contract {i}", ["evidence benchmark", f"client {i}"]))
        document = hook.upload_document(pdf)
        envelope = hook.create_envelope(f"Contract {i}", [document["id"]], SIGNERS)
        hook.send_envelope(envelope["id"])
        control.sign(envelope["id"])
        ids.append(envelope["id"])
    return ids


def download_all(hook: CertyneoHook, ids: list[str], folder: Path) -> float:
    started = time.perf_counter()
    for envelope_id in ids:
        hook.download_signed_document(envelope_id, folder / envelope_id / "signed.pdf", overwrite=True)
        hook.download_audit_trail(envelope_id, folder / envelope_id / "audit-trail.pdf", overwrite=True)
    return time.perf_counter() - started


def main() -> None:
    from airflow_provider_certyneo.operators.evidence import CertyneoArchiveEvidenceOperator

    with emulator(per_minute=10_000_000, burst=1_000_000) as (conn_id, control):
        work = Path(tempfile.mkdtemp(prefix="certyneo-evidence-bench-"))
        root = control.trust_root()
        roots = load_trust_roots([(root, "the emulator's root")])
        with CertyneoHook(conn_id) as hook:
            ids = completed_envelopes(hook, control, work)
            download_all(hook, ids, work / "warm-up")  # the emulator seals each envelope once, here
            download_seconds = download_all(hook, ids, work / "download")
            envelopes: dict[str, dict[str, Any]] = {e: dict(hook.get_envelope(e)) for e in ids}
            documents: dict[str, list[dict[str, Any]]] = {
                envelope_id: [dict(hook.get_document(d)) for d in envelope["documentIds"]]
                for envelope_id, envelope in envelopes.items()
            }
        operator = CertyneoArchiveEvidenceOperator(
            task_id="archive",
            certyneo_conn_id=conn_id,
            envelope_ids=ids,
            destination=str(work / "archive"),
            trust_roots=root,
        )
        started = time.perf_counter()
        results = operator.execute({})
        archive_seconds = time.perf_counter() - started
        operator.hook.close()
        assert all(r["verified"] for r in results), results

        timings = []
        for envelope_id in ids:
            folder = work / "download" / envelope_id
            signed, trail = (folder / "signed.pdf").read_bytes(), (folder / "audit-trail.pdf").read_bytes()
            started = time.perf_counter()
            report = verify_evidence(signed, trail, envelopes[envelope_id], documents[envelope_id], roots)
            timings.append(time.perf_counter() - started)
            assert report.ok, (envelope_id, report.summary(), hashlib.sha256(signed).hexdigest())
    print(f"evidence_contracts: {CONTRACTS}")
    print(f"evidence_verify_ms_per_contract: {statistics.median(timings) * 1000:.1f}")
    print(f"evidence_download_seconds: {download_seconds:.2f}")
    print(f"evidence_archive_seconds: {archive_seconds:.2f}")
    print(f"evidence_bulk_100_ratio_to_download: {archive_seconds / download_seconds:.2f}")


if __name__ == "__main__":
    main()
