"""The HTTP client of the Certyneo API: call protocol, routes, connection settings, files, validation,
timestamps, types and defaults. No Airflow operators, triggers or hooks here: the hooks drive it."""
