"""Reading a certyneo connection: defaults, extras, URI and JSON forms, and errors that say what to fix."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_provider_certyneo.client.settings import settings_from_connection
from airflow_provider_certyneo.exceptions import CertyneoConfigError
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

pytestmark = pytest.mark.smoke


KEY = "sk_test_" + "a" * 32
LIVE = "sk_live_" + "b" * 32


def settings(**fields: Any) -> Any:
    return settings_from_connection(Connection(conn_id="c", conn_type="certyneo", **fields))


def test_defaults() -> None:
    s = settings(password=KEY)
    assert s.base_url == "https://certyneo.com"
    assert s.api_url == "https://certyneo.com/api/v1"
    assert s.environment == "test"
    assert (s.timeout, s.max_retries, s.rate_limit_per_minute, s.rate_limit_burst, s.verify_ssl) == (
        30.0,
        6,
        100.0,
        200,
        True,
    )


def test_extras_plain_and_prefixed() -> None:
    s = settings(
        password=LIVE,
        extra='{"timeout": "12", "extra__certyneo__max_retries": 2, "verify_ssl": "false",'
        ' "rate_limit_per_minute": 50, "rate_limit_burst": 10}',
    )
    assert (s.timeout, s.max_retries, s.verify_ssl, s.rate_limit_per_minute, s.rate_limit_burst) == (
        12.0,
        2,
        False,
        50.0,
        10,
    )
    assert s.environment == "live"


def test_key_never_in_repr() -> None:
    assert KEY not in repr(settings(password=KEY))


def test_uri_form_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CERTYNEO_URI", f"certyneo://:{KEY}@http%3A%2F%2F127.0.0.1%3A8080")
    assert CertyneoHook("certyneo_uri").settings.base_url == "http://127.0.0.1:8080"
    monkeypatch.setenv("AIRFLOW_CONN_CERTYNEO_PLAIN", f"certyneo://:{KEY}@certyneo.com?timeout=5")
    plain = CertyneoHook("certyneo_plain").settings
    assert plain.base_url == "https://certyneo.com"
    assert plain.timeout == 5.0


def test_json_form_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CERTYNEO_JSON",
        json.dumps(
            {
                "conn_type": "certyneo",
                "password": LIVE,
                "host": "https://certyneo.com",
                "extra": {"max_retries": 3},
            }
        ),
    )
    s = CertyneoHook("certyneo_json").settings
    assert (s.environment, s.max_retries) == ("live", 3)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({}, "has no API key"),
        ({"password": "secret123"}, "sk_test_"),
        ({"password": KEY, "host": "http://certyneo.com"}, "plain http"),
        ({"password": KEY, "host": "ftp://x"}, "not a URL"),
        (
            {"password": KEY, "extra": '{"environment": "live"}'},
            "marked environment='live' but holds a test key",
        ),
        ({"password": LIVE, "extra": '{"environment": "test"}'}, "holds a live key"),
        ({"password": KEY, "extra": '{"timeout": "soon"}'}, "'timeout'"),
        ({"password": KEY, "extra": '{"verify_ssl": "maybe"}'}, "'verify_ssl'"),
        ({"password": KEY, "extra": '{"rate_limit_store": "cluster"}'}, "'rate_limit_store'"),
    ],
)
def test_errors_name_the_field(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(CertyneoConfigError, match="connection 'c'") as caught:
        settings(**fields)
    assert fragment in str(caught.value)
    assert KEY not in str(caught.value)


def test_rate_limit_store_defaults_to_the_host_and_a_redis_connection_means_redis() -> None:
    assert (settings(password=KEY).rate_limit_store, settings(password=KEY).rate_limit_redis_conn_id) == (
        "host",
        None,
    )
    shared = settings(password=KEY, extra='{"rate_limit_redis_conn_id": "redis_rate"}')
    assert (shared.rate_limit_store, shared.rate_limit_redis_conn_id) == ("redis", "redis_rate")
    assert settings(password=KEY, extra='{"rate_limit_store": "redis"}').rate_limit_redis_conn_id == (
        "redis_default"
    )
    assert settings(password=KEY, extra='{"rate_limit_store": "process"}').rate_limit_store == "process"


def test_http_allowed_for_localhost_only() -> None:
    assert settings(password=KEY, host="http://localhost:9000").base_url == "http://localhost:9000"
    assert settings(password=KEY, host="certyneo.example").base_url == "https://certyneo.example"


def test_tls_off_warns(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CERTYNEO_NOTLS",
        f'{{"conn_type": "certyneo", "password": "{KEY}", "extra": {{"verify_ssl": false}}}}',
    )
    with caplog.at_level("WARNING"):
        assert CertyneoHook("certyneo_notls").settings.verify_ssl is False
    assert "verification is OFF" in caplog.text


def test_form_is_declared_for_the_ui() -> None:
    from airflow_provider_certyneo import get_provider_info

    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == "certyneo"
    assert set(conn_type["conn-fields"]) == {
        "environment",
        "timeout",
        "max_retries",
        "rate_limit_per_minute",
        "rate_limit_burst",
        "rate_limit_store",
        "rate_limit_redis_conn_id",
        "verify_ssl",
        "dashboard_url_template",
        "evidence_trust_roots",
        "webhook_secret",
    }
    assert conn_type["conn-fields"]["dashboard_url_template"]["schema"]["default"] == (
        "{base_url}/app/envelopes/{envelope_id}"
    )
    assert conn_type["conn-fields"]["environment"]["schema"]["enum"] == ["test", "live", None]
    assert conn_type["ui-field-behaviour"]["relabeling"] == {"host": "Base URL", "password": "API key"}
    behaviour = CertyneoHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == ["schema", "port", "login"]


@pytest.mark.slow
def test_airflow_lists_the_connection_type() -> None:
    """`airflow providers hooks` (the real CLI) sees the certyneo connection type."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "hooks", "-o", "plain"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("certyneo"))
    assert "airflow_provider_certyneo.hooks.certyneo.CertyneoHook" in line


def test_repr_hides_everything() -> None:
    assert repr(CertyneoHook("x")) == "CertyneoHook(certyneo_conn_id='x')"


def test_provider_info_lists_every_module_the_package_ships() -> None:
    """Every operator, sensor, trigger and hook module (and every link class) is declared to Airflow."""
    import pkgutil

    import airflow_provider_certyneo
    from airflow_provider_certyneo import get_provider_info

    info = get_provider_info()
    declared = {
        m
        for kind in ("hooks", "operators", "sensors", "triggers")
        for e in info[kind]
        for m in e["python-modules"]
    }
    shipped = {
        m.name
        for m in pkgutil.walk_packages(airflow_provider_certyneo.__path__, "airflow_provider_certyneo.")
        if m.name.split(".")[1] in ("hooks", "operators", "sensors", "triggers") and not m.ispkg
    }
    helpers = {
        "airflow_provider_certyneo.hooks.base",
        "airflow_provider_certyneo.operators.base",
        "airflow_provider_certyneo.sensors.base",
        "airflow_provider_certyneo.triggers.arguments",
        "airflow_provider_certyneo.triggers.base",
        "airflow_provider_certyneo.triggers.failures",
        "airflow_provider_certyneo.triggers.feed",
        "airflow_provider_certyneo.triggers.results",
        "airflow_provider_certyneo.triggers.timing",
        "airflow_provider_certyneo.triggers.watcher",
    }
    assert declared == shipped - helpers
    from airflow_provider_certyneo.links import envelope as links

    link_classes = {
        f"{links.__name__}.{n}"
        for n, c in vars(links).items()
        if n.startswith("Certyneo") and n.endswith("Link") and isinstance(c, type)
    }
    assert set(info["extra-links"]) == link_classes
