"""One captured call, classified: answered (`ok`), refused by the upstream, or cut short."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from tracewheel.inference.capture.assemble import (
    CallRequest,
    Reply,
    read_json_reply,
    read_request,
    read_sse_reply,
    refusal_text,
)

CallState = Literal["ok", "refused", "incomplete"]


@dataclass(frozen=True)
class CapturedCall:
    """A request, and what became of it."""

    request: CallRequest
    state: CallState
    reply: Reply | None = None
    detail: str = ""
    """Why a call is refused or incomplete, in words."""
    header: str | None = None
    """The client's trace id header, if it sent a valid one."""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0


def read_call(
    request_body: bytes,
    status: int,
    content_type: str,
    response_body: bytes,
    *,
    finished: bool,
    header: str | None = None,
    started_at: datetime | None = None,
    seconds: float = 0.0,
) -> CapturedCall:
    """Classifies an exchange the endpoint saw.

    - refused: the upstream answered 4xx/5xx, an error object, or a reply that cannot be read;
    - incomplete: the response was not sent to the end (the client went away), or a stream
      ended before a `finish_reason`;
    - ok: anything else.

    Raises:
        ValueError: the request itself cannot be read (no messages): there is nothing to record.
    """
    request = read_request(request_body)

    def call(state: CallState, reply: Reply | None = None, detail: str = "") -> CapturedCall:
        return CapturedCall(request, state, reply, detail, header, started_at or datetime.now(UTC), seconds)

    if status >= 400:
        return call("refused", detail=f"HTTP {status}: {refusal_text(response_body)}")
    streamed = content_type.lower().startswith("text/event-stream")
    try:
        reply = read_sse_reply(response_body) if streamed else read_json_reply(response_body) if finished else None
    except ValueError as exc:
        if not finished:
            return call("incomplete", detail=f"the client went away after {len(response_body)} bytes of the reply")
        return call("refused", detail=f"HTTP {status}: unreadable reply: {exc}")
    if not finished:
        return call("incomplete", reply, f"the client went away after {len(response_body)} bytes of the reply")
    assert reply is not None
    if reply.error is not None:
        return call("refused", reply, f"HTTP {status}: error in the reply: {reply.error}")
    if streamed and reply.finish_reason is None:
        return call("incomplete", reply, "the stream ended before a finish_reason")
    return call("ok", reply)
