"""The call protocol alone, driven with made-up answers: no socket, no sleep, well under a second.

``perform`` is a generator: it yields what to do (send, sleep, hold the key back) and is sent each answer.
These tests play the server and check every decision: which status classes end, retry or throttle, what an
unsafe call does when its answer is lost, the retry budget and ``Retry-After``."""

from __future__ import annotations

import random
from collections.abc import Generator, Sequence
from typing import Any

import httpx
import pytest

from airflow_provider_certyneo.client.protocol import (
    Answer,
    ApiCall,
    Effect,
    Recovered,
    RetryPolicy,
    Sleep,
    Throttle,
    perform,
)
from airflow_provider_certyneo.exceptions import (
    CertyneoAuthError,
    CertyneoConnectionError,
    CertyneoInvalidStateError,
    CertyneoNotFoundError,
    CertyneoOutcomeUnknownError,
    CertyneoRateLimitedError,
    CertyneoServerError,
    CertyneoValidationError,
)

POLICY = RetryPolicy(max_retries=3, backoff_base=0.5, backoff_cap=4.0, rng=random.Random(1))
GET = ApiCall("GET", "/envelopes/env_1")
SEND = ApiCall("POST", "/envelopes/env_1/send", safe_to_repeat=False, unknown_advice="read the envelope")


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    request = httpx.Request("GET", "https://certyneo.com/api/v1/x")
    return httpx.Response(status, json=body if body is not None else {}, headers=headers, request=request)


def play(call: Generator[Effect, Answer, Any], outcomes: Sequence[Answer]) -> tuple[list[Effect], Any]:
    """Feed ``outcomes`` to each request the call makes; the effects it yielded and what it returned."""
    effects: list[Effect] = []
    feed = iter(outcomes)
    effect = next(call)
    try:
        while True:
            effects.append(effect)
            effect = call.send(next(feed) if isinstance(effect, ApiCall) else None)
    except StopIteration as stop:
        return effects, stop.value


def requests(effects: list[Effect]) -> int:
    return sum(isinstance(e, ApiCall) for e in effects)


def test_success_is_returned_after_one_request() -> None:
    effects, result = play(perform(GET, POLICY), [answer(200, {"id": "env_1"})])
    assert requests(effects) == 1
    assert result.json() == {"id": "env_1"}


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, CertyneoValidationError),
        (422, CertyneoValidationError),
        (401, CertyneoAuthError),
        (404, CertyneoNotFoundError),
        (409, CertyneoInvalidStateError),
    ],
)
def test_4xx_ends_at_once_with_the_servers_code_and_message(status: int, kind: type[Exception]) -> None:
    body = {"error": {"code": "some_code", "message": "what the server said"}}
    with pytest.raises(kind, match="what the server said") as caught:
        play(perform(GET, POLICY), [answer(status, body)])
    assert "/api/v1/envelopes/env_1" in str(caught.value)


def test_429_holds_the_key_back_for_retry_after_then_repeats() -> None:
    effects, result = play(perform(GET, POLICY), [answer(429, **{"Retry-After": "7"}), answer(200)])
    throttles = [e for e in effects if isinstance(e, Throttle)]
    assert len(throttles) == 1
    assert 7.0 <= throttles[0].seconds <= 7.05
    assert "Retry-After 7" in throttles[0].reason
    assert result.status_code == 200
    assert not [e for e in effects if isinstance(e, Sleep)], "a 429 spends no retry"


def test_429_without_a_number_waits_a_second() -> None:
    effects, _ = play(perform(GET, POLICY), [answer(429, **{"Retry-After": "soon"}), answer(200)])
    assert 1.0 <= next(e for e in effects if isinstance(e, Throttle)).seconds <= 1.05


def test_429s_beyond_the_wait_budget_end_the_call() -> None:
    policy = RetryPolicy(max_rate_limit_wait=10.0, rng=random.Random(1))
    storm = [answer(429, **{"Retry-After": "4"}) for _ in range(5)]
    with pytest.raises(CertyneoRateLimitedError, match="waited 8 s on the rate limit already"):
        play(perform(GET, policy), storm)


def test_5xx_is_retried_within_the_budget_with_capped_backoff() -> None:
    effects, result = play(perform(GET, POLICY), [answer(500), answer(503), answer(502), answer(200)])
    sleeps = [e for e in effects if isinstance(e, Sleep)]
    assert requests(effects) == 4
    assert len(sleeps) == 3
    assert all(0 <= s.seconds <= POLICY.backoff_cap for s in sleeps)
    assert "retry 3 of 3" in sleeps[-1].reason
    assert result.status_code == 200


def test_the_retry_budget_is_respected() -> None:
    with pytest.raises(CertyneoServerError, match=r"after 4 attempts"):
        play(perform(GET, POLICY), [answer(500)] * 10)


def test_transport_errors_are_retried_then_reported() -> None:
    refused = httpx.ConnectError("refused")
    outcomes: list[Answer] = [refused] * 4
    with pytest.raises(CertyneoConnectionError, match="ConnectError: refused \\(after 4 attempts\\)"):
        play(perform(GET, POLICY), outcomes)


def test_an_unsafe_call_never_sent_is_simply_repeated() -> None:
    effects, result = play(perform(SEND, POLICY), [httpx.ConnectError("refused"), answer(503), answer(200)])
    assert requests(effects) == 3
    assert result.status_code == 200


@pytest.mark.parametrize("lost", [httpx.ReadTimeout("timed out"), answer(500)])
def test_an_unsafe_call_whose_answer_was_lost_is_not_repeated_blindly(lost: Answer) -> None:
    with pytest.raises(CertyneoOutcomeUnknownError, match="read the envelope") as caught:
        play(perform(SEND, POLICY), [lost, answer(200)])
    assert caught.value.retryable


def test_an_unsafe_call_recovers_what_a_lost_answer_did() -> None:
    looked_up: list[str] = []

    def recover(policy: RetryPolicy) -> Generator[Effect, Answer, Recovered | None]:
        found = yield ApiCall("GET", "/envelopes/env_1")
        looked_up.append("read")
        assert isinstance(found, httpx.Response)
        return Recovered(found.json()) if found.json().get("status") == "SENT" else None

    call = ApiCall("POST", "/envelopes/env_1/send", safe_to_repeat=False, recover=recover)
    effects, result = play(
        perform(call, POLICY), [httpx.ReadTimeout("lost"), answer(200, {"status": "SENT"})]
    )
    assert looked_up == ["read"]
    assert result == Recovered({"status": "SENT"})
    assert [e.method for e in effects if isinstance(e, ApiCall)] == ["POST", "GET"]


def test_a_recovery_that_finds_nothing_repeats_the_call() -> None:
    def recover(policy: RetryPolicy) -> Generator[Effect, Answer, Recovered | None]:
        yield ApiCall("GET", "/envelopes/env_1")
        return None

    call = ApiCall("POST", "/envelopes/env_1/send", safe_to_repeat=False, recover=recover)
    effects, result = play(
        perform(call, POLICY), [httpx.ReadTimeout("lost"), answer(200, {"status": "DRAFT"}), answer(200)]
    )
    assert [e.method for e in effects if isinstance(e, ApiCall)] == ["POST", "GET", "POST"]
    assert result.status_code == 200
