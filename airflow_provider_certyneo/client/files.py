"""Local paths and Airflow ``ObjectStoragePath``s, read and written the same way, in streams."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, NamedTuple

from airflow_provider_certyneo.client.validation import check_pdf_header
from airflow_provider_certyneo.exceptions import CertyneoValidationError

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def as_path(location: Any) -> Any:
    """A ``pathlib.Path`` for local locations; an ``ObjectStoragePath`` (or any UPath) unchanged."""
    if hasattr(location, "fs") and hasattr(location, "open"):
        return location
    if isinstance(location, (str, os.PathLike)):
        text = os.fspath(location)
        if "://" in text:
            from airflow.sdk import ObjectStoragePath

            return ObjectStoragePath(text)
        return Path(text).expanduser()
    raise CertyneoValidationError(
        f"{location!r} is not a path: pass a str, a pathlib.Path or an ObjectStoragePath"
    )


def size_of(path: Any) -> int:
    stat = path.stat()
    size = getattr(stat, "st_size", None)
    if size is None and isinstance(stat, dict):
        size = stat.get("size")
    return int(size or 0)


class InspectedPdf(NamedTuple):
    """A PDF checked for upload: where it is, its size, and its SHA-256 (how a lost upload is found)."""

    path: Any
    size: int
    sha256: str


def inspect_pdf(source: Any) -> InspectedPdf:
    """The PDF to upload, read once, refusing what Certyneo would refuse before any request."""
    path = as_path(source)
    try:
        if not path.exists():
            raise CertyneoValidationError(f"document {path} does not exist")
        if path.is_dir():
            raise CertyneoValidationError(f"document {path} is a directory; pass the PDF file itself")
        size = size_of(path)
        with path.open("rb") as handle:
            check_pdf_header(handle.read(5), size, str(path))
            handle.seek(0)
            digest = hashlib.sha256()
            for chunk in iter(lambda: handle.read(1024 * 1024), b""):
                digest.update(chunk)
    except OSError as exc:
        raise CertyneoValidationError(f"document {path} cannot be read: {exc}") from exc
    return InspectedPdf(path, size, digest.hexdigest())


def safe_name(text: str) -> str:
    """``text`` with every run of characters other than ASCII letters, digits, ``.``, ``_`` and ``-``
    replaced by one ``_``: the provider's one rule for names it writes (downloads, bulk journals). Nothing
    else changes, so a name made from the same text is the same name in every version (a resumed bulk run
    finds its journal by it)."""
    return SAFE_NAME.sub("_", text)


def safe_filename(name: str) -> str:
    """A file name with no directory part and no characters a file system could misread."""
    base = safe_name(name.replace("\\", "/").rsplit("/", 1)[-1]).strip("._")
    return base or "document.pdf"


def download_target(
    destination: Any, default_name: str, overwrite: bool
) -> tuple[Any, Callable[[], IO[bytes]], Callable[[], None]]:
    """(final path, opener for the bytes, commit). A directory gets ``default_name`` inside it; the name
    never leaves the directory; an existing file is replaced only when ``overwrite`` is set."""
    path = as_path(destination)
    is_dir = path.is_dir() if path.exists() else str(destination).endswith(("/", os.sep))
    if is_dir:
        path = path / safe_filename(default_name)
    if path.exists() and not overwrite:
        raise CertyneoValidationError(f"{path} already exists: pass overwrite=True to replace it")
    if not hasattr(path, "fs"):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")

        def open_local() -> IO[bytes]:
            handle: IO[bytes] = open(partial, "wb")  # noqa: SIM115 - closed by the sink
            return handle

        def commit_local() -> None:
            os.replace(partial, path)

        return path, open_local, commit_local

    with contextlib.suppress(OSError, NotImplementedError):
        path.parent.mkdir(parents=True, exist_ok=True)

    def open_remote() -> IO[bytes]:
        handle: IO[bytes] = path.open("wb")
        return handle

    return path, open_remote, lambda: None
