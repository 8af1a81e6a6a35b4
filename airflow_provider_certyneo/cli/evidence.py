"""``certyneo-evidence verify PATH…``: re-check archived evidence bundles, offline, with the code the
archiving operator runs. PATH is a bundle folder (holding ``evidence.json``) or a folder holding many; one
line per bundle; the exit status is 1 when any bundle no longer verifies (each is named), 2 on bad usage."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

TRUST_ENV = "CERTYNEO_EVIDENCE_TRUST_ROOTS"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="certyneo-evidence", description=__doc__)
    commands = p.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="re-check archived bundles (seals, audit trail, hashes)")
    verify.add_argument("paths", nargs="+", metavar="PATH", help="a bundle folder, or a folder of bundles")
    verify.add_argument(
        "--trust-roots",
        action="append",
        default=[],
        metavar="PEM",
        help=f"a PEM file (or folder of them) of the roots seals must chain to; repeatable; "
        f"default ${TRUST_ENV}",
    )
    return p


def _describe(report: Any) -> str:
    seal = report.seals.get("signed_document") or {}
    subject = seal.get("certificate_subject") or "?"
    return f"{len(report.checks)} checks passed; seal {subject!r}, timestamp {seal.get('timestamp_time')}"


def verify(paths: list[str], trust_sources: list[str]) -> int:
    """Verify every bundle under ``paths``; print one line each; 0 when all verify, else 1."""
    from airflow_provider_certyneo.evidence.bundle import find_bundles, verify_bundle
    from airflow_provider_certyneo.evidence.trust import load_trust_roots

    roots = load_trust_roots([(source, f"trust roots {source!r}") for source in trust_sources])
    if not roots:
        print(
            "certyneo-evidence: no trust roots: pass --trust-roots PEM (Certyneo's root certificate; for "
            f"the emulator, GET /_emulator/trust-root) or set {TRUST_ENV}",
            file=sys.stderr,
        )
        return 2
    failed: list[str] = []
    total = 0
    for path in paths:
        bundles = find_bundles(path) if os.path.exists(path) or "://" in path else []
        if not bundles:
            print(f"FAIL {path}: no evidence bundle (no evidence.json) here")
            failed.append(path)
            continue
        for folder in bundles:
            total += 1
            report = verify_bundle(folder, roots)
            if report.ok:
                print(f"OK   {folder}: {_describe(report)}")
            else:
                print(f"FAIL {folder}: {report.summary()}")
                failed.append(str(folder))
    if failed:
        print(
            f"{len(failed)} of {max(total, len(failed))} bundle(s) do not verify: {', '.join(failed)}",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from airflow_provider_certyneo.exceptions import CertyneoConfigError

    sources = list(args.trust_roots) or ([os.environ[TRUST_ENV]] if os.environ.get(TRUST_ENV) else [])
    try:
        return verify(args.paths, sources)
    except CertyneoConfigError as exc:
        print(f"certyneo-evidence: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
