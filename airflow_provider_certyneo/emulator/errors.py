"""The contract's error body, raised anywhere in the emulator and rendered by one handler."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A non-2xx answer: ``{"error": {"code", "message", "details"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def validation(message: str, *details: dict[str, Any]) -> ApiError:
    return ApiError(400, "validation_error", message, list(details) or None)


def not_found(kind: str, object_id: str) -> ApiError:
    return ApiError(404, "not_found", f"{kind} {object_id!r} does not exist")


def invalid_state(message: str, status: str) -> ApiError:
    return ApiError(409, "invalid_state", message, [{"field": "status", "status": status}])
