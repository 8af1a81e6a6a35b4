"""The result of verifying evidence: named checks, each passed or failed with a detail a person can act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    """One verification step: ``name`` (stable, e.g. ``signed_document.intact``), passed or not, and why."""

    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class Report:
    """Every check of one bundle, with what the seals said (certificate, signing and timestamp times)."""

    checks: list[Check] = field(default_factory=list)
    seals: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        return bool(ok)

    def extend(self, other: Report) -> None:
        self.checks.extend(other.checks)
        self.seals.update(other.seals)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def summary(self) -> str:
        """One line: what failed (name: detail; …), or how many checks passed."""
        if self.ok:
            return f"{len(self.checks)}/{len(self.checks)} checks passed"
        return "; ".join(f"{check.name}: {check.detail}" for check in self.failures)
