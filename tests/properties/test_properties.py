"""Property-based tests (hypothesis): the rate limiters never let more than burst + rate·t requests through
in any window of length t; the webhook verifier accepts exactly the deliveries signed with the secret."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_certyneo.client.webhooks import verify_webhook_signature
from airflow_provider_certyneo.emulator.ratelimit import RateLimiter
from airflow_provider_certyneo.exceptions import CertyneoWebhookError
from airflow_provider_certyneo.governor import rule as pacing


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


arrivals = st.lists(st.floats(min_value=0, max_value=30, allow_nan=False), min_size=1, max_size=400)


@settings(max_examples=200, deadline=None)
@given(
    gaps=arrivals,
    per_minute=st.sampled_from([60.0, 100.0, 600.0, 6000.0]),
    burst=st.integers(1, 50),
    window=st.floats(min_value=0.01, max_value=20),
)
def test_client_bucket_never_exceeds_burst_plus_rate(
    gaps: list[float], per_minute: float, burst: int, window: float
) -> None:
    rule = pacing.Rule(per_minute, burst)
    state: pacing.State | None = None
    sends = []
    for arrival in sorted(gaps):
        now = 1000.0 + arrival
        state, wait = pacing.apply(rule, state, now, pacing.Take())
        sends.append(now + wait)
    assert most_in_any_window(sends, window) <= rule.capacity + per_minute / 60 * window + 1e-9


@settings(max_examples=200, deadline=None)
@given(
    gaps=arrivals,
    per_minute=st.sampled_from([60.0, 100.0, 6000.0]),
    burst=st.integers(1, 50),
    window=st.floats(min_value=0.01, max_value=20),
)
def test_emulator_bucket_never_exceeds_burst_plus_rate(
    gaps: list[float], per_minute: float, burst: int, window: float
) -> None:
    from airflow_provider_certyneo.emulator import ratelimit as server

    clock = FakeClock()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(server.time, "monotonic", clock.monotonic)
        limiter = RateLimiter(per_minute, burst)
        accepted = []
        for arrival in sorted(gaps):
            clock.now = 1000.0 + arrival
            retry_after = limiter.acquire("key")
            if retry_after is None:
                accepted.append(clock.now)
            else:
                assert isinstance(retry_after, int)
                assert retry_after >= 1
    assert most_in_any_window(accepted, window) <= burst + per_minute / 60 * window + 1e-9


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=2000), secret=st.text(min_size=1, max_size=60), flip=st.integers(0, 10_000))
def test_webhook_verifier_accepts_exactly_the_signed_body(body: bytes, secret: str, flip: int) -> None:
    header = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    verify_webhook_signature(body, header, secret)
    verify_webhook_signature(body, header.upper().replace("SHA256=", "sha256="), secret)
    if body:
        index = flip % len(body)
        tampered = body[:index] + bytes([body[index] ^ (1 << (flip % 8))]) + body[index + 1 :]
        with pytest.raises(CertyneoWebhookError):
            verify_webhook_signature(tampered, header, secret)
    with pytest.raises(CertyneoWebhookError):
        verify_webhook_signature(body, header, secret + "x")


@settings(max_examples=200, deadline=None)
@given(header=st.text(max_size=80))
def test_webhook_verifier_refuses_arbitrary_headers(header: str) -> None:
    body = b'{"id": "evt_1"}'
    with pytest.raises(CertyneoWebhookError):
        verify_webhook_signature(body, header, "whsec_secret")
