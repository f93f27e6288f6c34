"""Capture's HTTP side: an ASGI middleware that copies each chat call, and the complete route.

The middleware forwards every message first and copies it after, so what the client
receives (status, headers, every byte of every SSE chunk) is what the endpoint behind it
sent, and no byte waits on capture. When the call ends (the reply sent to the end, the
client gone, or the endpoint failed) the copy is classified and recorded; a failure in
capture is logged and never reaches the client. Calls answered 401/403 (not authenticated)
or 429 (come back later) are not recorded: they say nothing about the conversation.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracewheel.inference.capture.book import TRACE_HEADER, trace_header
from tracewheel.inference.capture.call import read_call
from tracewheel.inference.capture.feedback import parse_feedback
from tracewheel.inference.capture.runtime import CaptureRuntime

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
COMPLETE_PATH = "/v1/traces/{trace_id}/complete"
MAX_CAPTURED_BYTES = 32 * 1024 * 1024  # per direction; a larger call is served but not recorded
NOT_RECORDED = {401, 403, 429}
_HEADER_KEY = TRACE_HEADER.lower().encode()


@dataclass
class _Exchange:
    header: str | None
    started: float = field(default_factory=time.perf_counter)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    request: list[bytes] = field(default_factory=list)
    response: list[bytes] = field(default_factory=list)
    size: int = 0
    status: int | None = None
    content_type: str = ""
    finished: bool = False
    overflow: bool = False

    def keep(self, into: list[bytes], chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > 2 * MAX_CAPTURED_BYTES:
            self.overflow = True
        elif chunk:
            into.append(chunk)


def _header(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == _HEADER_KEY:
            return trace_header(value.decode("latin-1"))
    return None


class CaptureMiddleware:
    """Copies `POST /v1/chat/completions` exchanges into the capture runtime."""

    def __init__(self, app: ASGIApp, runtime: CaptureRuntime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != CHAT_PATH:
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(_header(scope))

        async def receive_copy() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                exchange.keep(exchange.request, message.get("body", b""))
            return message

        async def send_copy(message: Message) -> None:
            await send(message)  # the client first
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                headers = dict(message.get("headers", ()))
                exchange.content_type = headers.get(b"content-type", b"").decode("latin-1")
            elif message["type"] == "http.response.body":
                exchange.keep(exchange.response, message.get("body", b""))
                exchange.finished = not message.get("more_body", False)

        try:
            await self.app(scope, receive_copy, send_copy)
        finally:
            self._record(exchange)

    def _record(self, exchange: _Exchange) -> None:
        status = exchange.status if exchange.status is not None else 500
        if status in NOT_RECORDED:
            return
        if exchange.overflow:
            log.warning("chat call of more than %d bytes served but not captured", 2 * MAX_CAPTURED_BYTES)
            return
        try:
            call = read_call(
                b"".join(exchange.request),
                status,
                exchange.content_type,
                b"".join(exchange.response),
                finished=exchange.finished,
                header=exchange.header,
                started_at=exchange.started_at,
                seconds=time.perf_counter() - exchange.started,
            )
        except ValueError as exc:
            log.warning("chat call not captured: %s", exc)
            return
        try:
            self.runtime.observe(call)
        except Exception:
            log.exception("capture failed on a chat call (the client's reply was not affected)")


def install_capture(app: FastAPI, runtime: CaptureRuntime) -> None:
    """Adds the capture middleware and `POST /v1/traces/{trace_id}/complete` to an OpenAI app (before it serves).

    The middleware goes innermost, after the app's own guards (token, Host, body size), so a call
    they refuse is never recorded, and the complete route is guarded like every other.

    Raises:
        RuntimeError: the app has started serving already.
    """
    if app.middleware_stack is not None:
        raise RuntimeError("install capture before the app serves")
    app.user_middleware.append(Middleware(CaptureMiddleware, runtime=runtime))

    async def complete_trace(trace_id: str, request: Request) -> dict[str, Any]:
        feedback = parse_feedback(await request.body())
        trace = runtime.complete(trace_id, feedback)
        return {
            "id": trace.id,
            "object": "trace",
            "messages": len(trace.messages),
            "calls": int(trace.metadata.extra.get("capture_calls", "0")),
            "outcome": trace.outcome.model_dump(mode="json") if trace.outcome else None,
        }

    app.add_api_route(COMPLETE_PATH, complete_trace, methods=["POST"])
