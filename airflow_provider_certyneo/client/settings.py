"""Reads a ``certyneo`` Airflow connection into settings the hook can trust, or says what to fix."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_certyneo.client import defaults
from airflow_provider_certyneo.client.validation import LOCAL_HOSTS
from airflow_provider_certyneo.exceptions import CertyneoConfigError
from airflow_provider_certyneo.governor.governor import STORES

KEY_PATTERN = re.compile(r"^sk_(test|live)_[A-Za-z0-9_-]{24,}$")


@dataclass(frozen=True)
class CertyneoSettings:
    """Everything the hook needs from a connection. The key is kept out of ``repr``."""

    conn_id: str
    base_url: str
    api_key: str = field(repr=False)
    environment: str
    timeout: float = defaults.TIMEOUT
    max_retries: int = defaults.MAX_RETRIES
    rate_limit_per_minute: float = defaults.RATE_LIMIT_PER_MINUTE
    rate_limit_burst: int = defaults.RATE_LIMIT_BURST
    verify_ssl: bool = defaults.VERIFY_SSL
    max_rate_limit_wait: float = defaults.MAX_RATE_LIMIT_WAIT
    backoff_base: float = defaults.BACKOFF_BASE
    backoff_cap: float = defaults.BACKOFF_CAP
    rate_limit_store: str = defaults.RATE_LIMIT_STORE
    rate_limit_redis_conn_id: str | None = None
    dashboard_url_template: str = defaults.DASHBOARD_URL_TEMPLATE
    # PEM text or path(s) of the roots Certyneo's seals must chain to (CertyneoArchiveEvidenceOperator)
    evidence_trust_roots: Any = field(default=None, repr=False)

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v1"

    def envelope_url(self, envelope_id: str) -> str:
        """The envelope's page in the dashboard, from the connection's ``dashboard_url_template``."""
        return self.dashboard_url_template.format(base_url=self.base_url.rstrip("/"), envelope_id=envelope_id)


def _dashboard_template(conn_id: str, extra: dict[str, Any]) -> str:
    """The extra ``dashboard_url_template``, checked now: only ``{base_url}`` and ``{envelope_id}``."""
    template = _extra_value(extra, "dashboard_url_template") or defaults.DASHBOARD_URL_TEMPLATE
    try:
        str(template).format(base_url="https://x", envelope_id="env_x")
    except (KeyError, IndexError, ValueError) as exc:
        raise CertyneoConfigError(
            f"connection {conn_id!r}: extra field 'dashboard_url_template' is {template!r}; it may use only "
            f"{{base_url}} and {{envelope_id}} ({type(exc).__name__}: {exc})"
        ) from None
    return str(template)


def _extra_value(extra: dict[str, Any], name: str) -> Any:
    for candidate in (name, f"extra__certyneo__{name}"):
        value = extra.get(candidate)
        if value not in (None, ""):
            return value
    return None


def _number(conn_id: str, extra: dict[str, Any], name: str, default: float, kind: type) -> Any:
    value = _extra_value(extra, name)
    if value is None:
        return default
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise CertyneoConfigError(
            f"connection {conn_id!r}: extra field {name!r} is {value!r}; expected a {kind.__name__}"
        ) from None
    if number < 0 or (name != "max_retries" and number == 0):
        raise CertyneoConfigError(f"connection {conn_id!r}: extra field {name!r} must be positive")
    return number


def _boolean(conn_id: str, extra: dict[str, Any], name: str, default: bool) -> bool:
    value = _extra_value(extra, name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise CertyneoConfigError(f"connection {conn_id!r}: extra field {name!r} is {value!r}; use true or false")


def _rate_limit_store(conn_id: str, extra: dict[str, Any]) -> tuple[str, str | None]:
    """Where the key's bucket is shared: ``host`` (default), ``redis`` (with a redis connection id), or
    ``process``. Naming a redis connection alone means ``redis``."""
    redis_conn_id = _extra_value(extra, "rate_limit_redis_conn_id")
    store = str(
        _extra_value(extra, "rate_limit_store") or ("redis" if redis_conn_id else defaults.RATE_LIMIT_STORE)
    ).lower()
    if store not in STORES:
        raise CertyneoConfigError(
            f"connection {conn_id!r}: extra field 'rate_limit_store' is {store!r}; use 'host' (the processes "
            "of one machine share the key's pace), 'redis' (every host does, through a Redis connection) or "
            "'process'"
        )
    if store == "redis" and not redis_conn_id:
        redis_conn_id = "redis_default"
    return store, (str(redis_conn_id) if store == "redis" else None)


def base_url_from(conn_id: str, host: str | None, port: int | None, schema: str | None) -> str:
    """``https://certyneo.com`` by default; plain http only for this machine (the emulator)."""
    raw = (host or "").strip() or defaults.BASE_URL
    if "://" not in raw:
        scheme = schema if schema in ("http", "https") else "https"
        raw = f"{scheme}://{raw}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CertyneoConfigError(
            f"connection {conn_id!r}: host {host!r} is not a URL like https://certyneo.com"
        )
    if port and parts.port is None:
        raw = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
        parts = urlsplit(raw)
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise CertyneoConfigError(
            f"connection {conn_id!r}: base URL {raw!r} uses plain http; use https "
            "(http is allowed only for localhost, e.g. the bundled emulator)"
        )
    path = parts.path.rstrip("/").removesuffix("/api/v1")
    return f"{parts.scheme}://{parts.netloc}{path}"


def settings_from_connection(conn: Any) -> CertyneoSettings:
    """Turn an Airflow ``Connection`` (any version's) into :class:`CertyneoSettings`."""
    conn_id = conn.conn_id or defaults.CONN_ID
    extra: dict[str, Any] = conn.extra_dejson or {}
    api_key = (conn.password or _extra_value(extra, "api_key") or "").strip()
    if not api_key:
        raise CertyneoConfigError(
            f"connection {conn_id!r} has no API key: put the sk_test_… or sk_live_… key in its password field"
        )
    match = KEY_PATTERN.match(api_key)
    if not match:
        raise CertyneoConfigError(
            f"connection {conn_id!r}: the API key (password field) is not a Certyneo key; it must look like "
            "sk_test_… or sk_live_… followed by at least 24 characters"
        )
    environment = match.group(1)
    declared = _extra_value(extra, "environment")
    if declared is not None and str(declared).lower() != environment:
        raise CertyneoConfigError(
            f"connection {conn_id!r} is marked environment={declared!r} but holds a {environment} key "
            f"(sk_{environment}_…); put a sk_{declared}_… key in it or fix the 'environment' extra"
        )
    store, redis_conn_id = _rate_limit_store(conn_id, extra)
    return CertyneoSettings(
        conn_id=conn_id,
        base_url=base_url_from(conn_id, _extra_value(extra, "base_url") or conn.host, conn.port, conn.schema),
        api_key=api_key,
        environment=environment,
        timeout=float(_number(conn_id, extra, "timeout", defaults.TIMEOUT, float)),
        max_retries=int(_number(conn_id, extra, "max_retries", defaults.MAX_RETRIES, int)),
        rate_limit_per_minute=float(
            _number(conn_id, extra, "rate_limit_per_minute", defaults.RATE_LIMIT_PER_MINUTE, float)
        ),
        rate_limit_burst=int(_number(conn_id, extra, "rate_limit_burst", defaults.RATE_LIMIT_BURST, int)),
        verify_ssl=_boolean(conn_id, extra, "verify_ssl", defaults.VERIFY_SSL),
        max_rate_limit_wait=float(
            _number(conn_id, extra, "max_rate_limit_wait", defaults.MAX_RATE_LIMIT_WAIT, float)
        ),
        backoff_base=float(_number(conn_id, extra, "backoff_base", defaults.BACKOFF_BASE, float)),
        backoff_cap=float(_number(conn_id, extra, "backoff_cap", defaults.BACKOFF_CAP, float)),
        rate_limit_store=store,
        rate_limit_redis_conn_id=redis_conn_id,
        dashboard_url_template=_dashboard_template(conn_id, extra),
        evidence_trust_roots=_extra_value(extra, "evidence_trust_roots"),
    )
