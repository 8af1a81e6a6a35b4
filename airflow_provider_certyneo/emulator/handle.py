"""A small client for the emulator's control API, for tests, demos and benchmarks."""

from __future__ import annotations

import json
from typing import Any

import httpx


class EmulatorControl:
    """Drives a running emulator from outside: sign, decline, expire, faults, counters, reset."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=f"{self.base_url}/_emulator", timeout=30)

    def _call(self, method: str, path: str, json: dict[str, Any] | None = None) -> Any:
        response = self._client.request(method, path, json=json)
        if response.is_error:
            raise RuntimeError(f"emulator control {method} {path}: {response.status_code} {response.text}")
        return response.json()

    def counters(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/counters")
        return result

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """The server's request log after sequence number ``since``: ``seq``, ``at`` (arrival, seconds on the
        server's monotonic clock), ``method``, ``route``, ``path``, ``userAgent``, ``status``,
        ``retryAfter``, ``fault``, ``answeredAt``."""
        response = self._client.get("/requests", params={"since": since})
        if response.is_error:
            raise RuntimeError(f"emulator control GET /requests: {response.status_code} {response.text}")
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    def reset(self) -> None:
        self._call("POST", "/reset")

    def trust_root(self) -> str:
        """The PEM of the test root CA the emulator seals with (kept across resets and restarts)."""
        response = self._client.get("/trust-root")
        if response.is_error:
            raise RuntimeError(f"emulator control GET /trust-root: {response.status_code} {response.text}")
        return response.text

    def configure(self, **settings: Any) -> dict[str, Any]:
        """camelCase settings: ratePerMinute, burst, autoSignAfter, autoAction, declineReason, ..."""
        result: dict[str, Any] = self._call("PATCH", "/config", settings)
        return result

    def set_faults(self, *rules: dict[str, Any], seed: int | None = None) -> None:
        self._call("PUT", "/faults", {"rules": list(rules), "seed": seed})

    def clear_faults(self) -> None:
        self.set_faults()

    def faults(self) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = self._call("GET", "/faults")["rules"]
        return rules

    def add_key(self, environment: str = "test", name: str = "extra", secret: str | None = None) -> str:
        created = self._call("POST", "/keys", {"environment": environment, "name": name, "secret": secret})
        secret_value: str = created["secret"]
        return secret_value

    def envelope(self, envelope_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/envelopes/{envelope_id}")
        return result

    def alias(self, envelope_id: str, alias: str) -> None:
        """Make the envelope answer to ``alias`` too (any text: a hostile id the service hands out)."""
        self._call("POST", f"/envelopes/{envelope_id}/aliases", {"alias": alias})

    def sign(self, envelope_id: str, email: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/envelopes/{envelope_id}/sign", {"email": email})
        return result

    def decline(
        self, envelope_id: str, reason: str | None = None, email: str | None = None
    ) -> dict[str, Any]:
        body = {"email": email, "reason": reason}
        result: dict[str, Any] = self._call("POST", f"/envelopes/{envelope_id}/decline", body)
        return result

    def expire(self, envelope_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/envelopes/{envelope_id}/expire")
        return result

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._call("GET", "/webhook-deliveries")["data"]
        return data

    def close(self) -> None:
        self._client.close()


def connection_json(base_url: str, key: str, **extra: object) -> str:
    """An ``AIRFLOW_CONN_*`` value (JSON) for a ``certyneo`` connection to the emulator at ``base_url``."""
    conn: dict[str, object] = {"conn_type": "certyneo", "password": key, "host": base_url}
    if extra:
        conn["extra"] = extra
    return json.dumps(conn)
