"""What ``get_provider_info`` tells Airflow: the connection form, hooks, operators, triggers, links."""

from __future__ import annotations

from typing import Any

from airflow_provider_certyneo.client import defaults
from airflow_provider_certyneo.version import __version__

CONNECTION_FIELDS: dict[str, Any] = {
    "environment": {
        "label": "Environment",
        "description": "test or live: a key of the other environment is refused (empty: the key decides).",
        "schema": {
            "type": ["string", "null"],
            "enum": ["test", "live", None],
            "default": None,
            "values_display": {"test": "test", "live": "live", "null": "the key decides"},
        },
    },
    "timeout": {
        "label": "Request timeout (seconds)",
        "description": "How long one HTTP request may take before it is retried.",
        "schema": {"type": ["number", "null"], "default": defaults.TIMEOUT},
    },
    "max_retries": {
        "label": "Retry budget",
        "description": "Attempts after the first for connection errors, timeouts, 5xx and 429 answers.",
        "schema": {"type": ["integer", "null"], "default": defaults.MAX_RETRIES},
    },
    "rate_limit_per_minute": {
        "label": "Rate limit (requests per minute)",
        "description": "Client-side pacing per API key; Certyneo allows 100 sustained.",
        "schema": {"type": ["number", "null"], "default": defaults.RATE_LIMIT_PER_MINUTE},
    },
    "rate_limit_burst": {
        "label": "Rate limit burst",
        "description": "Requests allowed at once before pacing starts; Certyneo allows 200.",
        "schema": {"type": ["integer", "null"], "default": defaults.RATE_LIMIT_BURST},
    },
    "rate_limit_store": {
        "label": "Rate limit shared by",
        "description": "Where the key's pace is kept: 'host' (every process of a machine: LocalExecutor, "
        "standalone), 'redis' (every host: Celery, Kubernetes, several triggerers) or 'process'.",
        "schema": {
            "type": ["string", "null"],
            "enum": ["host", "redis", "process", None],
            "default": defaults.RATE_LIMIT_STORE,
        },
    },
    "rate_limit_redis_conn_id": {
        "label": "Redis connection for the rate limit",
        "description": "An Airflow 'redis' connection id (needs apache-airflow-providers-redis); setting "
        "it shares the pace through Redis.",
        "schema": {"type": ["string", "null"], "default": None},
    },
    "verify_ssl": {
        "label": "Verify TLS certificates",
        "description": "Leave on. Turning it off logs a warning on every hook.",
        "schema": {"type": ["boolean", "null"], "default": defaults.VERIFY_SSL},
    },
    "dashboard_url_template": {
        "label": "Dashboard URL template",
        "description": "The envelope's page for the 'Certyneo envelope' link and the Signatures view; "
        "{base_url} and {envelope_id} are filled in.",
        "schema": {"type": ["string", "null"], "default": defaults.DASHBOARD_URL_TEMPLATE},
    },
    "evidence_trust_roots": {
        "label": "Evidence trust roots",
        "description": "PEM text, or the path of a PEM file, of the root certificates Certyneo's seals must "
        "chain to (CertyneoArchiveEvidenceOperator verifies archived evidence against them).",
        "schema": {"type": ["string", "null"], "default": None},
    },
    "webhook_secret": {
        "label": "Webhook secret",
        "description": "The whsec_… secret Certyneo gave when the receiver was registered "
        "(certyneo-webhooks register); deliveries not signed with it are refused.",
        "schema": {"type": ["string", "null"], "format": "password", "default": None},
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
            {
                "integration-name": "Certyneo",
                "python-modules": [
                    "airflow_provider_certyneo.hooks.certyneo",
                    "airflow_provider_certyneo.hooks.certyneo_async",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": "Certyneo",
                "python-modules": [
                    "airflow_provider_certyneo.operators.bulk",
                    "airflow_provider_certyneo.operators.document",
                    "airflow_provider_certyneo.operators.envelope",
                    "airflow_provider_certyneo.operators.evidence",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "Certyneo", "python-modules": ["airflow_provider_certyneo.sensors.envelope"]}
        ],
        "triggers": [
            {
                "integration-name": "Certyneo",
                "python-modules": [
                    "airflow_provider_certyneo.triggers.envelope",
                    "airflow_provider_certyneo.triggers.envelope_set",
                    "airflow_provider_certyneo.triggers.events",
                ],
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
        "plugins": [
            {"name": "certyneo", "plugin-class": "airflow_provider_certyneo.plugins.certyneo.CertyneoPlugin"}
        ],
        "asset-uris": [{"schemes": ["certyneo"], "handler": None}],
    }
