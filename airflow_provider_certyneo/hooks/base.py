"""What the sync and async Certyneo hooks share: the connection and its settings, the retry policy, the
key's rate governor, the connection form for Airflow 3.1, and how a request is authenticated."""

from __future__ import annotations

import functools
import logging
import ssl
import time
from collections.abc import Generator
from typing import Any

import httpx
from airflow.sdk import BaseHook

from airflow_provider_certyneo.client import defaults
from airflow_provider_certyneo.client.protocol import (
    ApiCall,
    RetryPolicy,
    Sleep,
    Throttle,
)
from airflow_provider_certyneo.client.settings import CertyneoSettings, settings_from_connection
from airflow_provider_certyneo.client.timestamps import ServerClock
from airflow_provider_certyneo.governor.governor import Governor, governor_for, key_fingerprint
from airflow_provider_certyneo.governor.rule import Rule
from airflow_provider_certyneo.provider_info import CONNECTION_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_certyneo.version import __version__

log = logging.getLogger(__name__)
USER_AGENT = f"airflow-provider-certyneo/{__version__}"


@functools.lru_cache(maxsize=2)
def tls_context(verify: bool) -> ssl.SSLContext | bool:
    """One TLS context per process: loading the CA bundle takes tens of milliseconds, too long to repeat
    for every hook, and far too long for an event loop shared by a thousand triggers."""
    return httpx.create_ssl_context(verify=True) if verify else False


class BearerAuth(httpx.Auth):
    """Adds the key to each request; its repr never shows it."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Set the ``Authorization`` header (never logged: the hooks log method, path and status only)."""
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(<hidden>)"


class CertyneoBaseHook(BaseHook):
    """What the sync and async hooks share: the connection, the settings, the retry policy, the bucket."""

    conn_name_attr = "certyneo_conn_id"
    default_conn_name = defaults.CONN_ID
    conn_type = "certyneo"
    hook_name = "Certyneo"

    def __init__(
        self,
        certyneo_conn_id: str = default_conn_name,
        *,
        backoff_base: float | None = None,
        backoff_cap: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.certyneo_conn_id = certyneo_conn_id
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._settings: CertyneoSettings | None = None
        self._governor: Governor | None = None
        self.server_clock = ServerClock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(certyneo_conn_id={self.certyneo_conn_id!r})"

    def _observe(self, outcome: httpx.Response | httpx.TransportError) -> None:
        if isinstance(outcome, httpx.Response):
            self.server_clock.observe(outcome.headers.get("date"), time.time())

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form for Airflow 3.1 (3.2+ reads ``ui-field-behaviour`` from provider info)."""
        return {
            "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
            "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
            "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields for Airflow 3.1's form; empty where its form libraries are not installed."""
        try:
            from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
            from wtforms import BooleanField, SelectField, StringField
        except ImportError:
            return {}
        widgets: dict[str, Any] = {}
        for name, spec in CONNECTION_FIELDS.items():
            if "boolean" in spec["schema"]["type"]:
                widgets[name] = BooleanField(spec["label"], default=spec["schema"]["default"])
            elif "enum" in spec["schema"]:
                choices = [(value or "", value or "(default)") for value in spec["schema"]["enum"]]
                widgets[name] = SelectField(spec["label"], choices=choices, default="")
            else:
                widgets[name] = StringField(spec["label"], widget=BS3TextFieldWidget())
        return widgets

    def _load_settings(self, conn: Any) -> CertyneoSettings:
        settings = settings_from_connection(conn)
        try:
            from airflow.providers.common.compat.sdk import mask_secret

            mask_secret(settings.api_key)
        except Exception:  # noqa: BLE001 - masking is best effort outside a task
            log.debug("secret masker not available here")
        self._settings = settings
        self._governor = self.governor()
        log.info(
            "Certyneo connection %r: %s environment at %s (key %s…, fingerprint %s; pace shared by: %s)",
            settings.conn_id,
            settings.environment,
            settings.base_url,
            f"sk_{settings.environment}_",
            key_fingerprint(settings.api_key),
            "this machine"
            if settings.rate_limit_store == "host"
            else f"Redis {settings.rate_limit_redis_conn_id!r}"
            if settings.rate_limit_store == "redis"
            else "this process",
        )
        if not settings.verify_ssl:
            log.warning("Certyneo connection %r: TLS certificate verification is OFF", settings.conn_id)
        return settings

    def governor(self, purpose: str = "requests", share: float = 1.0) -> Governor:
        """The governor pacing this key's ``purpose`` at ``share`` of its rate, shared as the connection
        says (``rate_limit_store``): by this machine's processes, all hosts via Redis, or this process."""
        settings = self._settings
        assert settings is not None, "read the connection first"
        rule = Rule(settings.rate_limit_per_minute, settings.rate_limit_burst)
        return governor_for(
            settings.api_key,
            rule if share == 1.0 else rule.share(share),
            settings.rate_limit_store,
            settings.rate_limit_redis_conn_id,
            purpose,
        )

    @property
    def policy(self) -> RetryPolicy:
        """The retry budget and backoff of this connection (hook arguments override its extras)."""
        assert self._settings is not None
        return RetryPolicy(
            max_retries=self._settings.max_retries,
            backoff_base=self._settings.backoff_base if self.backoff_base is None else self.backoff_base,
            backoff_cap=self._settings.backoff_cap if self.backoff_cap is None else self.backoff_cap,
            max_rate_limit_wait=self._settings.max_rate_limit_wait,
        )

    def _new_client_options(self, settings: CertyneoSettings, tls: ssl.SSLContext | bool) -> dict[str, Any]:
        return {
            "base_url": settings.api_url,
            "auth": BearerAuth(settings.api_key),
            "timeout": httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout)),
            "verify": tls,
            "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"},
            "follow_redirects": False,
        }

    def _request_options(self, call: ApiCall) -> dict[str, Any]:
        options: dict[str, Any] = {"params": list(call.params) or None}
        if call.json is not None:
            options["json"] = call.json
        return options

    @staticmethod
    def _log_wait(effect: Sleep | Throttle) -> None:
        if isinstance(effect, Throttle):
            log.warning(
                "Certyneo rate limit: %s; every request on this key waits %.2f s",
                effect.reason,
                effect.seconds,
            )
        else:
            log.warning("Certyneo: %s; retrying in %.2f s", effect.reason, effect.seconds)
