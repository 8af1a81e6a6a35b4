"""The one rule for names the provider writes (downloads, bulk journals): ``client.files.safe_name``."""

from __future__ import annotations

import pytest

from airflow_provider_certyneo.client.files import safe_filename, safe_name

NAMES = [
    (
        "certyneo_bulk.manual__2026-11-28T10:00:00.500+00:00.send.3",
        "certyneo_bulk.manual__2026-11-28T10_00_00.500_00_00.send.3",
    ),
    ("contrats clients (nov).csv", "contrats_clients_nov_.csv"),
    ("Café/../été.pdf", "Caf_.._t_.pdf"),
    ("already-safe_name.v2", "already-safe_name.v2"),
]


@pytest.mark.parametrize(("text", "expected"), NAMES)
def test_safe_name_replaces_each_run_of_other_characters_by_one_underscore(text: str, expected: str) -> None:
    """Exactly what the bulk journals were always named by: a resumed run finds its journal."""
    assert safe_name(text) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\marie\\contrat signé.pdf", "contrat_sign_.pdf"),
        ("...", "document.pdf"),
        (".hidden.pdf", "hidden.pdf"),
    ],
)
def test_safe_filename_keeps_no_directory_part(name: str, expected: str) -> None:
    assert safe_filename(name) == expected
