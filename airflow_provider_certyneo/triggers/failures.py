"""What the shared poller says when it cannot poll: which failures are passing, and how to fix the others.

A waiting trigger is the only place a deployment mistake in the triggerer shows up (the workers may have a
connection the triggerer lacks), so every message names the connection and what to change. Messages are
built from exception texts, which in this provider never hold the key.
"""

from __future__ import annotations

import httpx

from airflow_provider_certyneo.exceptions import CertyneoConfigError, CertyneoError


def _named(exc: BaseException, name: str) -> bool:
    """``exc`` is of a class called ``name``: Airflow moved its exceptions between versions (core, SDK)."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def is_transient(exc: BaseException) -> bool:
    """A failure that polling again later can get past: a retryable API error or a network error."""
    if isinstance(exc, CertyneoError):
        return exc.retryable
    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError))


def explain(exc: BaseException, conn_id: str) -> str:
    """The message a waiting task fails with: what went wrong in the triggerer, and what to fix."""
    if _named(exc, "AirflowNotFoundException"):
        return (
            f"connection {conn_id!r} is not defined where the triggerer runs: define it in the triggerer's "
            "environment too (the workers have it, the triggerer does not)"
        )
    if isinstance(exc, CertyneoConfigError):
        return f"{exc} (as read by the triggerer: fix the connection where the triggerer runs)"
    if isinstance(exc, CertyneoError):
        return str(exc)
    return (
        f"the Certyneo poller of connection {conn_id!r} stopped on an unexpected error "
        f"({type(exc).__name__}: {exc}); this is a bug in airflow-provider-certyneo, please report it "
        "with the triggerer's log"
    )
