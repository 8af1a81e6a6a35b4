"""The provider's Airflow plugin: Certyneo's webhooks received on the API server (see :mod:`.certyneo`)."""
