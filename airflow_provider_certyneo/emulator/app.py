"""Assembles the emulator's ASGI application: routes, the contract's error body, counters and faults."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote, unquote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_certyneo.emulator.api import router as api_router
from airflow_provider_certyneo.emulator.config import EmulatorConfig
from airflow_provider_certyneo.emulator.control import control, signing
from airflow_provider_certyneo.emulator.errors import ApiError
from airflow_provider_certyneo.emulator.runtime import Runtime

log = logging.getLogger("certyneo.emulator")
ID_SEGMENT = re.compile(r"/(doc|env|whk|key)_[A-Za-z0-9]+")
TRANSPORT = "_certyneo_transport"


def route_template(method: str, path: str) -> str:
    """``POST /api/v1/envelopes/env_1a2b/send`` -> ``POST /api/v1/envelopes/{id}/send``."""
    return f"{method} {ID_SEGMENT.sub('/{id}', path)}"


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "details": None}}, status_code=status)


DELAYS = frozenset({"latency", "slow_answer"})


def hold_back_answer(send: Send, seconds: float) -> Send:
    async def send_late(message: Message) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(seconds)
        await send(message)

    return send_late


def logged(send: Send, runtime: Runtime, entry: dict[str, Any]) -> Send:
    """``send`` that records in the request log's ``entry`` the status and ``Retry-After`` it answered."""

    async def send_logged(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = {k.lower(): v for k, v in message.get("headers", [])}
            retry_after = headers.get(b"retry-after")
            runtime.answered(entry, message["status"], retry_after.decode() if retry_after else None)
        await send(message)

    return send_logged


class FaultsAndCounters:
    """Counts every API request by route and logs it (arrival time, answer, ``Retry-After``, fault), then
    applies the injected faults that match it."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api/v1/") or path == "/api/v1/openapi.json":
            await self.app(scope, receive, send)
            return
        rt = self.runtime
        route = route_template(scope["method"], path)
        rt.count(route)
        headers = dict(scope.get("headers") or [])
        user_agent = headers.get(b"user-agent", b"").decode("latin-1") or None
        entry = rt.log_request(scope["method"], route, path, user_agent)
        send = logged(send, rt, entry)
        actions: list[tuple[str, float]] = []
        with rt.counter_lock:
            for rule in rt.config.faults:
                failing = any(action not in DELAYS for action, _ in actions)
                delaying = rule.action in DELAYS
                if (delaying or not failing) and rule.matches(scope["method"], path, rt.rng):
                    rule.fire(path)
                    actions.append((rule.action, rule.seconds))
        delay = sum(seconds for action, seconds in actions if action == "latency")
        if delay:
            await asyncio.sleep(delay)
        answer_delay = sum(seconds for action, seconds in actions if action == "slow_answer")
        if answer_delay:
            send = hold_back_answer(send, answer_delay)
        kinds = {action for action, _ in actions}
        failures = [action for action, _ in actions if action not in DELAYS]
        if failures:
            entry["fault"] = failures[0]
        transport = (scope.get("state") or {}).get(TRANSPORT)
        if "reset" in kinds and transport is not None:
            transport.abort()
            return
        for status, action in ((500, "error500"), (503, "error503")):
            if action in kinds:
                response = error_response(status, "internal_error", f"injected fault: {status}")
                await response(scope, receive, send)
                return
        if "lost" in kinds:

            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            if transport is None:
                raise RuntimeError(
                    "lost-response fault needs the emulator's own server (no transport in scope)"
                )
            transport.abort()
            return
        await self.app(scope, receive, send)


class EnvelopeAliases:
    """An envelope answers ``/api/v1/envelopes/{alias}/...`` too, for the aliases set through the control API
    (``POST /_emulator/envelopes/{id}/aliases``): any text, even one that decodes to ``../..`` or an absolute
    path, so tests can hand a client a hostile id that the service answers. The id segment is read from the
    raw (still percent-encoded) path, where a ``%2F`` does not split it."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        aliases = self.runtime.aliases
        raw: bytes = scope.get("raw_path") or b""
        if scope["type"] == "http" and aliases and raw.startswith(b"/api/v1/envelopes/"):
            segments = raw.decode("latin-1").split("/")
            real = aliases.get(unquote(segments[4]))
            if real is not None:
                segments[4] = quote(real, safe="")
                rewritten = "/".join(segments)
                scope = {**scope, "raw_path": rewritten.encode(), "path": unquote(rewritten)}
        await self.app(scope, receive, send)


class ServiceClockHeader:
    """Every answer carries ``Date`` from the service's own clock (``clockSkewSeconds`` can set it apart
    from the machine's), as a real server's would."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                date = format_datetime(self.runtime.store.now(), usegmt=True).encode()
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                message = {**message, "headers": [*headers, (b"date", date)]}
            await send(message)

        await self.app(scope, receive, send_dated)


class PersistChanges:
    """With a state file, writes the state after every request that may change it (so a killed emulator
    restarts with everything a client was told), as a service's database would."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD")
            or not self.runtime.config.state_file
        ):
            await self.app(scope, receive, send)
            return

        persisted = False

        async def persist_then_send(message: Message) -> None:
            nonlocal persisted
            if message["type"] == "http.response.start":
                self.runtime.persist()
                persisted = True
            await send(message)

        try:
            await self.app(scope, receive, persist_then_send)
        finally:
            if not persisted:
                self.runtime.persist()


def create_app(config: EmulatorConfig | None = None, keys: list[str] | None = None) -> FastAPI:
    """The emulator as an ASGI app; ``keys`` are the secrets accepted from the start."""
    runtime = Runtime(config or EmulatorConfig(), keys or [])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.loop = asyncio.get_running_loop()
        yield
        runtime.loop = None
        runtime.persist()

    app = FastAPI(
        title="Certyneo emulator", openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan
    )
    app.state.runtime = runtime
    app.include_router(api_router)
    app.include_router(control)
    app.include_router(signing)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(404, "not_found", f"no route {request.method} {request.url.path}")
        if exc.status_code == 405:
            return error_response(
                405, "validation_error", f"{request.method} is not allowed on {request.url.path}"
            )
        return error_response(exc.status_code, "internal_error", str(exc.detail))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("emulator error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", f"emulator error: {type(exc).__name__}")

    app.add_middleware(FaultsAndCounters, runtime=runtime)
    app.add_middleware(EnvelopeAliases, runtime=runtime)
    app.add_middleware(PersistChanges, runtime=runtime)
    app.add_middleware(ServiceClockHeader, runtime=runtime)
    return app


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
