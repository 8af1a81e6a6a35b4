"""How one API call is made, retried and recovered, written once for both hooks.

Each call is a generator (no I/O of its own): it yields *effects* — send this request, wait this long,
hold every caller of this key back — and receives the outcome of each request. The sync hook drives it
with ``httpx.Client`` and ``time.sleep``, the async hook with ``httpx.AsyncClient`` and
``asyncio.sleep``; the retry rules, the reading of ``Retry-After`` and the recovery of unsafe POSTs live
here and nowhere else.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import IO, Any

import httpx

from airflow_provider_certyneo.client import defaults
from airflow_provider_certyneo.exceptions import (
    CertyneoConnectionError,
    CertyneoError,
    CertyneoOutcomeUnknownError,
    error_for_status,
)

JITTER_SECONDS = 0.05
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """A file to send as multipart field ``file``; opened anew for each attempt, never read whole."""

    filename: str
    open: Callable[[], IO[bytes]]


class DownloadSink:
    """Receives a streamed PDF, hashing it on the way; commits only a complete, successful body."""

    def __init__(self, opener: Callable[[], IO[bytes]]) -> None:
        self._opener = opener
        self._file: IO[bytes] | None = None
        self.sha256 = hashlib.sha256()
        self.size = 0

    def begin(self) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._file = self._opener()

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(chunk)
        self.sha256.update(chunk)
        self.size += len(chunk)

    def end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(frozen=True)
class ApiCall:
    """One request to ``/api/v1``. ``safe_to_repeat``: repeating it cannot apply it twice.
    ``recover``: for calls that are not, a way to find the outcome of an attempt whose answer was lost."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    json: dict[str, Any] | None = None
    upload: Upload | None = None
    sink: DownloadSink | None = None
    safe_to_repeat: bool = True
    recover: Callable[[RetryPolicy], Generator[Effect, Answer, Recovered | None]] | None = field(
        default=None, repr=False
    )
    unknown_advice: str = ""


@dataclass(frozen=True)
class Sleep:
    """Wait before the next attempt; ``reason`` says what failed, for the task log."""

    seconds: float
    reason: str = ""


@dataclass(frozen=True)
class Throttle:
    """Hold back every request of this key for ``seconds`` (the server answered 429)."""

    seconds: float
    reason: str = ""


@dataclass(frozen=True)
class Recovered:
    """The outcome of a call whose answer was lost, found by looking it up."""

    value: Any


Effect = ApiCall | Sleep | Throttle
Answer = httpx.Response | httpx.TransportError | None


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = defaults.MAX_RETRIES
    backoff_base: float = defaults.BACKOFF_BASE
    backoff_cap: float = defaults.BACKOFF_CAP
    max_rate_limit_wait: float = defaults.MAX_RATE_LIMIT_WAIT
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, failures: int) -> float:
        """Capped exponential backoff with full jitter."""
        return self.rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (failures - 1)))

    def jitter(self) -> float:
        return self.rng.uniform(0, JITTER_SECONDS)


def error_from_response(call: ApiCall, response: httpx.Response, note: str = "") -> CertyneoError:
    """The exception for a non-2xx answer, with the server's code and message (never a header)."""
    code, message, details = None, response.reason_phrase or "error", None
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = error.get("code")
            message = str(error.get("message") or message)
            details = error.get("details") if isinstance(error.get("details"), list) else None
    except ValueError:
        if response.text:
            message = response.text[:300]
    kind = error_for_status(response.status_code)
    return kind(
        message + note,
        method=call.method,
        path=f"/api/v1{call.path}",
        status=response.status_code,
        code=code,
        details=details,
    )


def call_name(call: ApiCall) -> str:
    return f"{call.method} /api/v1{call.path}"


def retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 1.0


def perform(call: ApiCall, policy: RetryPolicy) -> Generator[Effect, Answer, httpx.Response | Recovered]:
    """Send ``call`` until it succeeds, a non-retryable answer comes, or the budget is spent."""
    failures = 0
    rate_limited_wait = 0.0
    outcome_unknown = False
    reason = ""
    while True:
        outcome = yield call
        if isinstance(outcome, httpx.Response):
            status = outcome.status_code
            if outcome.is_success:
                return outcome
            if status == 429:
                wait = retry_after(outcome)
                if rate_limited_wait + wait > policy.max_rate_limit_wait:
                    raise error_from_response(
                        call, outcome, f" (waited {rate_limited_wait:.0f} s on the rate limit already)"
                    )
                rate_limited_wait += wait
                yield Throttle(wait + policy.jitter(), f"{call_name(call)} -> 429, Retry-After {wait:g} s")
                continue
            if status < 500:
                raise error_from_response(call, outcome)
            if failures >= policy.max_retries:
                raise error_from_response(call, outcome, f" (after {failures + 1} attempts)")
            outcome_unknown = outcome_unknown or status not in (502, 503)
            reason = f"{call_name(call)} -> {status}"
        elif isinstance(outcome, httpx.TransportError):
            if failures >= policy.max_retries:
                raise CertyneoConnectionError(
                    f"{type(outcome).__name__}: {outcome} (after {failures + 1} attempts)",
                    method=call.method,
                    path=f"/api/v1{call.path}",
                ) from outcome
            never_sent = isinstance(outcome, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
            outcome_unknown = outcome_unknown or not never_sent
            reason = f"{call_name(call)}: {type(outcome).__name__}"
        failures += 1
        if outcome_unknown and not call.safe_to_repeat:
            if call.recover is None:
                raise CertyneoOutcomeUnknownError(
                    "the answer was lost and repeating the request could apply it twice. "
                    + call.unknown_advice,
                    method=call.method,
                    path=f"/api/v1{call.path}",
                )
            found = yield from call.recover(policy)
            if found is not None:
                return found
        yield Sleep(policy.backoff(failures), f"{reason} (retry {failures} of {policy.max_retries})")


def call_json(call: ApiCall, policy: RetryPolicy) -> Generator[Effect, Answer, Any]:
    """``perform`` and return the JSON body (or the recovered object, or None for 204)."""
    result = yield from perform(call, policy)
    if isinstance(result, Recovered):
        return result.value
    if result.status_code == 204 or not result.content:
        return None
    return result.json()
