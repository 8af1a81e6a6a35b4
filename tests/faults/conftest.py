"""Fault scenarios report what the emulator's own counters say: one line per scenario, at the end."""

from __future__ import annotations

from typing import Any

import pytest

REPORTS: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORTS:
        terminalreporter.section("Certyneo fault scenarios (from the emulator's counters)")
        for line in REPORTS:
            terminalreporter.write_line(line)


@pytest.fixture
def report() -> Any:
    return REPORTS.append
