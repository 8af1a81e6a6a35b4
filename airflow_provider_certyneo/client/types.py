"""The API's objects as typed dictionaries: they are what the hook returns and what tasks push to XCom.

Certyneo may add fields; these types list the ones the contract promises, and the dictionaries keep any
others untouched.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from typing_extensions import NotRequired

TERMINAL_STATUSES = frozenset({"COMPLETED", "DECLINED", "VOIDED", "EXPIRED"})
KNOWN_STATUSES = frozenset({"DRAFT", "SENT", *TERMINAL_STATUSES})
SigningOrder = Literal["PARALLEL", "SEQUENTIAL"]


class RecipientInput(TypedDict):
    """A recipient as given to create or update: ``role`` defaults to SIGNER, ``order`` to the position."""

    email: str
    name: str
    role: NotRequired[str]
    order: NotRequired[int]


class Recipient(TypedDict):
    id: str
    email: str
    name: str
    role: str
    order: int
    status: str
    signUrl: str | None
    signedAt: str | None
    declineReason: str | None


class Envelope(TypedDict):
    id: str
    subject: str
    message: str | None
    status: str
    signingOrder: str
    documentIds: list[str]
    recipients: list[Recipient]
    createdAt: str
    updatedAt: str
    sentAt: str | None
    completedAt: str | None
    expiresAt: str | None


class Document(TypedDict):
    id: str
    filename: str
    contentType: str
    size: int
    sha256: str
    pages: int
    createdAt: str


class Webhook(TypedDict):
    id: str
    url: str
    events: list[str]
    createdAt: str
    secret: NotRequired[str]


class ApiKey(TypedDict):
    id: str
    name: str
    environment: str
    prefix: str
    createdAt: str
    lastUsedAt: str | None
    revokedAt: str | None
    secret: NotRequired[str]


class DownloadResult(TypedDict):
    """Where a downloaded PDF landed, and its SHA-256 and size: plain JSON, fit for XCom."""

    path: str
    sha256: str
    size: int
