"""What ``get_provider_info`` tells Airflow: the connection form, hooks, operators, triggers, links."""

from __future__ import annotations

from typing import Any

CONNECTION_FIELDS: dict[str, Any] = {
    "environment": {
        "label": "Environment",
        "description": "test or live: a key of the other environment is refused (empty: the key decides).",
        "schema": {"type": ["string", "null"], "enum": ["test", "live", None], "default": None},
    },
    "timeout": {
        "label": "Request timeout (seconds)",
        "description": "How long one HTTP request may take before it is retried.",
        "schema": {"type": ["number", "null"], "default": 30},
    },
    "max_retries": {
        "label": "Retry budget",
        "description": "Attempts after the first for connection errors, timeouts, 5xx and 429 answers.",
        "schema": {"type": ["integer", "null"], "default": 6},
    },
    "rate_limit_per_minute": {
        "label": "Rate limit (requests per minute)",
        "description": "Client-side pacing per API key; Certyneo allows 100 sustained.",
        "schema": {"type": ["number", "null"], "default": 100},
    },
    "rate_limit_burst": {
        "label": "Rate limit burst",
        "description": "Requests allowed at once before pacing starts; Certyneo allows 200.",
        "schema": {"type": ["integer", "null"], "default": 200},
    },
    "verify_ssl": {
        "label": "Verify TLS certificates",
        "description": "Leave on. Turning it off logs a warning on every hook.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "login"],
    "relabeling": {"host": "Base URL", "password": "API key"},
    "placeholders": {
        "host": "https://certyneo.com",
        "password": "sk_live_… or sk_test_…",
        "extra": '{"timeout": 30, "max_retries": 6}',
    },
}


def provider_info() -> dict[str, Any]:
    from airflow_provider_certyneo import __version__

    return {
        "package-name": "airflow-provider-certyneo",
        "name": "Certyneo",
        "description": "Certyneo (eIDAS e-signature): upload, send and track contracts from Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Certyneo",
                "external-doc-url": "https://certyneo.com",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": "Certyneo", "python-modules": ["airflow_provider_certyneo.hooks.certyneo"]}
        ],
        "operators": [
            {
                "integration-name": "Certyneo",
                "python-modules": [
                    "airflow_provider_certyneo.operators.envelope",
                    "airflow_provider_certyneo.operators.document",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "Certyneo", "python-modules": ["airflow_provider_certyneo.sensors.envelope"]}
        ],
        "triggers": [
            {
                "integration-name": "Certyneo",
                "python-modules": ["airflow_provider_certyneo.triggers.envelope"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "certyneo",
                "hook-class-name": "airflow_provider_certyneo.hooks.certyneo.CertyneoHook",
                "hook-name": "Certyneo",
                "conn-fields": CONNECTION_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "extra-links": ["airflow_provider_certyneo.links.envelope.CertyneoEnvelopeLink"],
    }
