"""``certyneo-emulator``: serve the Certyneo API locally."""

from __future__ import annotations

import argparse
import importlib.util
import sys

INSTALL = 'pip install "airflow-provider-certyneo[emulator]"'
NEEDS = {
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "multipart": "python-multipart",
    "pypdf": "pypdf",
    "pyhanko": "pyhanko",
}


def missing_distributions() -> list[str]:
    """What the emulator needs and this environment lacks (the ``emulator`` extra)."""
    return [dist for module, dist in NEEDS.items() if not _importable(module)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="certyneo-emulator", description="A local, faithful Certyneo API v1.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument(
        "--key", action="append", default=[], help="an accepted key (sk_test_… or sk_live_…); repeatable"
    )
    p.add_argument(
        "--rate-per-minute", type=float, default=100.0, help="sustained rate per key (default 100)"
    )
    p.add_argument("--burst", type=int, default=200, help="token-bucket capacity per key (default 200)")
    p.add_argument(
        "--auto-sign-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="sign every sent envelope as all its signers after SECONDS",
    )
    p.add_argument(
        "--auto-decline", action="store_true", help="with --auto-sign-after: decline instead of sign"
    )
    p.add_argument(
        "--state-file",
        default=None,
        metavar="PATH",
        help="keep every object in PATH, written after each change: a restarted emulator serves on from it",
    )
    p.add_argument("--log-level", default="warning")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    missing = missing_distributions()
    if missing:
        print(
            f"certyneo-emulator needs {', '.join(missing)}, which this environment lacks: {INSTALL}",
            file=sys.stderr,
        )
        return 2
    from airflow_provider_certyneo.emulator.config import EmulatorConfig
    from airflow_provider_certyneo.emulator.server import EmulatorServer

    config = EmulatorConfig(
        rate_per_minute=args.rate_per_minute,
        burst=args.burst,
        auto_sign_after=args.auto_sign_after,
        auto_action="decline" if args.auto_decline else "sign",
        state_file=args.state_file,
    )
    try:
        server = EmulatorServer(args.host, args.port, args.key or None, config, args.log_level)
    except ValueError as exc:
        print(f"certyneo-emulator: {exc}", file=sys.stderr)
        return 2
    print(f"Certyneo emulator on {server.base_url}", flush=True)
    print(f"  API base URL: {server.base_url}/api/v1", flush=True)
    for key in server.keys:
        print(f"  key ({'live' if key.startswith('sk_live_') else 'test'}): {key}", flush=True)
    print(f"  control API: {server.base_url}/_emulator", flush=True)
    server.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
