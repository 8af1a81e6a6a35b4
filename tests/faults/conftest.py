"""Fault scenarios report what the emulator's own counters say: one line per scenario, at the end, always
with the same fields (contracts, sent, duplicates, lost, failed tries and why), then scenario details."""

from __future__ import annotations

from typing import Any, Protocol

import pytest

REPORTS: list[str] = []


class Report(Protocol):
    def __call__(
        self,
        scenario: str,
        *,
        contracts: int,
        sent: int,
        duplicates: int,
        failed: str = "none",
        **details: Any,
    ) -> None: ...


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORTS:
        terminalreporter.section("Certyneo fault scenarios (from the emulator's counters)")
        for line in REPORTS:
            terminalreporter.write_line(line)


@pytest.fixture
def report() -> Report:
    def add(
        scenario: str, *, contracts: int, sent: int, duplicates: int, failed: str = "none", **details: Any
    ) -> None:
        fields = f"contracts={contracts} sent={sent} duplicates={duplicates} lost={contracts - sent}"
        extra = " ".join(f"{name}={value}" for name, value in details.items())
        REPORTS.append(f"{scenario}: {fields} failed_tries={failed} {extra}".rstrip())

    return add
