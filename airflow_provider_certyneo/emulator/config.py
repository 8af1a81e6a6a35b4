"""What an emulator run can be told: rate limit, automatic signing, webhook retries, injected faults."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

FAULT_ACTIONS = ("error500", "error503", "latency", "reset", "lost", "slow_answer")


@dataclass
class FaultRule:
    """One injected fault. ``method``/``path`` select requests (regex on the path); ``probability`` and
    ``times`` (None = unlimited) bound how often it fires. ``seconds`` is the added latency: before the
    request is applied (``latency``) or after it, holding back the answer (``slow_answer``, a slow commit:
    a client that gives up or dies meanwhile never learns it succeeded). Every matching latency rule adds
    up; of the other rules, the first that matches a request is the one that fires. With ``paths``, the rule
    hits only the first ``paths`` distinct paths it matches (e.g. the sends of the first 8 envelopes) and
    ``times`` counts per path: an outage of some objects that others outlive."""

    action: str
    method: str | None = None
    path: str = ".*"
    probability: float = 1.0
    times: int | None = None
    seconds: float = 0.0
    paths: int | None = None
    fired: int = 0
    fired_by_path: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FaultRule:
        action = raw.get("action")
        if action not in FAULT_ACTIONS:
            raise ValueError(f"fault action must be one of {', '.join(FAULT_ACTIONS)}, not {action!r}")
        rule = cls(
            action=action,
            method=(raw.get("method") or None),
            path=raw.get("path") or ".*",
            probability=float(raw.get("probability", 1.0)),
            times=raw.get("times"),
            seconds=float(raw.get("seconds", 0.0)),
            paths=raw.get("paths"),
        )
        re.compile(rule.path)
        if not 0.0 <= rule.probability <= 1.0:
            raise ValueError("fault probability must be between 0 and 1")
        return rule

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "method": self.method,
            "path": self.path,
            "probability": self.probability,
            "times": self.times,
            "seconds": self.seconds,
            "paths": self.paths,
            "fired": self.fired,
            "firedByPath": dict(self.fired_by_path),
        }

    def matches(self, method: str, path: str, rng: random.Random) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        if not re.search(self.path, path):
            return False
        if self.paths is not None:
            if path not in self.fired_by_path and len(self.fired_by_path) >= self.paths:
                return False
            if self.times is not None and self.fired_by_path.get(path, 0) >= self.times:
                return False
        elif self.times is not None and self.fired >= self.times:
            return False
        return rng.random() < self.probability

    def fire(self, path: str) -> None:
        """Count one firing (on ``path``)."""
        self.fired += 1
        if self.paths is not None:
            self.fired_by_path[path] = self.fired_by_path.get(path, 0) + 1


@dataclass
class EmulatorConfig:
    rate_per_minute: float = 100.0
    burst: int = 200
    auto_sign_after: float | None = None
    auto_action: str = "sign"
    decline_reason: str = "I do not agree with the terms"
    webhook_attempts: int = 5
    webhook_backoff: float = 1.0
    envelope_lifetime_seconds: float = 30 * 24 * 3600.0
    clock_skew_seconds: float = 0.0
    faults: list[FaultRule] = field(default_factory=list)
    seed: int | None = None
    state_file: str | None = None

    def update(self, raw: dict[str, Any]) -> None:
        """Apply the control API's camelCase settings."""
        names = {
            "ratePerMinute": "rate_per_minute",
            "burst": "burst",
            "autoSignAfter": "auto_sign_after",
            "autoAction": "auto_action",
            "declineReason": "decline_reason",
            "webhookAttempts": "webhook_attempts",
            "webhookBackoff": "webhook_backoff",
            "envelopeLifetimeSeconds": "envelope_lifetime_seconds",
            "clockSkewSeconds": "clock_skew_seconds",
        }
        unknown = set(raw) - set(names)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}; known: {', '.join(names)}")
        if raw.get("autoAction", self.auto_action) not in ("sign", "decline"):
            raise ValueError("autoAction must be 'sign' or 'decline'")
        for camel, attribute in names.items():
            if camel in raw:
                setattr(self, attribute, raw[camel])

    def to_json(self) -> dict[str, Any]:
        return {
            "ratePerMinute": self.rate_per_minute,
            "burst": self.burst,
            "autoSignAfter": self.auto_sign_after,
            "autoAction": self.auto_action,
            "declineReason": self.decline_reason,
            "webhookAttempts": self.webhook_attempts,
            "webhookBackoff": self.webhook_backoff,
            "envelopeLifetimeSeconds": self.envelope_lifetime_seconds,
            "clockSkewSeconds": self.clock_skew_seconds,
            "faults": [rule.to_json() for rule in self.faults],
        }
