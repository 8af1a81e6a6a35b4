"""One exception family for everything the Certyneo API or its client can refuse.

Messages carry the HTTP method, path, status and the server's ``code`` and ``message`` — never the API key
or any header. Errors that no retry can fix also derive from ``AirflowFailException``, so a task that
meets one fails at once instead of burning its retries.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException


class CertyneoError(Exception):
    """Base of every error raised by this provider."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        code: str | None = None,
        details: list[Any] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.server_message = message
        self.details = details
        where = f"{method} {path}" if method and path else None
        head = " ".join(part for part in (where, f"-> {status}" if status else None, code) if part)
        super().__init__(f"{head}: {message}" if head else message)


class CertyneoConfigError(CertyneoError, AirflowFailException, ValueError):
    """The connection or an argument is wrong; the message names the field and the fix."""

    retryable = False


class CertyneoValidationError(CertyneoError, AirflowFailException, ValueError):
    """Input the API refuses (400/413/415/422), found before any request where possible."""

    retryable = False


class CertyneoAuthError(CertyneoError, AirflowFailException):
    """401/403: the key is missing, malformed, unknown, revoked or not allowed."""

    retryable = False


class CertyneoNotFoundError(CertyneoError, AirflowFailException):
    """404: no such object for this key's environment (a test key never sees live objects)."""

    retryable = False


class CertyneoInvalidStateError(CertyneoError, AirflowFailException):
    """409: the object is in a state that forbids the operation; ``current_status`` says which."""

    retryable = False

    @property
    def current_status(self) -> str | None:
        for detail in self.details or []:
            if isinstance(detail, dict) and isinstance(detail.get("status"), str):
                status: str = detail["status"]
                return status
        return None


class CertyneoWaitError(CertyneoError, AirflowFailException):
    """The envelope will never reach the awaited status (declined, voided, expired) or the wait timed out."""

    retryable = False


class CertyneoEvidenceError(CertyneoError, AirflowFailException):
    """Archived evidence did not verify (seal, audit trail or hashes): retrying downloads the same bytes."""

    retryable = False


class CertyneoRateLimitedError(CertyneoError):
    """429 answers outlasted the time allowed for waiting on the rate limit."""


class CertyneoServerError(CertyneoError):
    """5xx answers outlasted the retry budget."""


class CertyneoConnectionError(CertyneoError):
    """Connection errors or timeouts outlasted the retry budget."""


class CertyneoOutcomeUnknownError(CertyneoError):
    """A request that is unsafe to repeat may or may not have been applied; nothing was re-sent."""


class CertyneoWebhookError(CertyneoError, ValueError):
    """A webhook delivery failed verification (signature, age or replay)."""

    retryable = False


STATUS_ERRORS: dict[int, type[CertyneoError]] = {
    400: CertyneoValidationError,
    401: CertyneoAuthError,
    403: CertyneoAuthError,
    404: CertyneoNotFoundError,
    409: CertyneoInvalidStateError,
    413: CertyneoValidationError,
    415: CertyneoValidationError,
    422: CertyneoValidationError,
    429: CertyneoRateLimitedError,
}


def error_for_status(status: int) -> type[CertyneoError]:
    if status in STATUS_ERRORS:
        return STATUS_ERRORS[status]
    if status >= 500:
        return CertyneoServerError
    return CertyneoValidationError if 400 <= status < 500 else CertyneoError
