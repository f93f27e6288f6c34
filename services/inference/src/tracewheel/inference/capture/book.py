"""Captured calls grouped into conversations, and conversations completed into Traces.

Grouping (docs/capture.md):
- a call with the `X-Tracewheel-Trace-Id` header joins the open conversation of that id; a
  call under that id that does not extend the conversation (its messages do not start with the
  conversation so far) completes it (`diverged`) and opens `<id>.2`;
- any other call joins the open conversation whose messages so far (requests and replies) its
  messages start with, the longest such one, else opens `capture-<hex>`.

A conversation keeps the messages as first seen: the reasoning of a reply stays in the trace
even when the client drops it from the history it sends back.

Completion: `complete` (the client; optional feedback), `expire` (idle longer than the
timeout), a refused call (its own trace, at once), a call cut short (the conversation, at
once), `close_all` (shutdown). A refused or cut-short trace carries the verdict `error`, which
curation rejects, so it is never trained on.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import ValidationError

from tracewheel.core.errors import Conflict, NotFound, TracewheelError
from tracewheel.core.trace import (
    Message,
    Outcome,
    Task,
    TokenUsage,
    Tool,
    Trace,
    TraceMetadata,
    Verdict,
    conversation_problems,
)
from tracewheel.inference.capture.call import CapturedCall
from tracewheel.inference.capture.feedback import Feedback
from tracewheel.inference.capture.transcript import chain, merge_tools, prefix_digests, to_message, to_tools

log = logging.getLogger(__name__)

TRACE_HEADER = "X-Tracewheel-Trace-Id"
SOURCE = "capture"
_HEADER_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
CompletedBy = Literal["client", "idle", "refused", "incomplete", "diverged", "shutdown"]


def trace_header(value: str | None) -> str | None:
    """The header's trace id when it is usable (letters, digits, `._:@-`, up to 128), else None."""
    if value is None:
        return None
    if _HEADER_VALUE.match(value):
        return value
    log.warning("ignored %s %r: use up to 128 letters, digits and ._:@-", TRACE_HEADER, value[:200])
    return None


@dataclass
class Conversation:
    """An open conversation: its messages so far and what its calls added up to."""

    trace_id: str
    header: str | None
    created_at: datetime
    last_seen: float
    updated_at: datetime
    model: str = ""
    messages: list[Message] = field(default_factory=list)
    digests: list[bytes] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    calls: int = 0
    completion_ids: list[str] = field(default_factory=list)
    usage: TokenUsage = field(default_factory=TokenUsage)
    call_seconds: float = 0.0

    def extended_by(self, digests: list[bytes]) -> bool:
        """Whether a request with these prefix digests starts with this conversation."""
        n = len(self.digests)
        return n == 0 or (len(digests) >= n and digests[n - 1] == self.digests[-1])

    def add_problems(self, problems: list[str]) -> None:
        self.problems = list(dict.fromkeys([*self.problems, *problems]))


@dataclass(frozen=True)
class Completion:
    """Why and how a trace was completed."""

    by: CompletedBy
    outcome: Outcome | None = None
    extra: dict[str, str] = field(default_factory=dict)
    task: Task | None = None


class CaptureBook:
    """The open conversations of one endpoint (single-threaded: call from one event loop).

    Args:
        idle_timeout_s: a conversation with no call for this long is completed by `expire`.
        clock: monotonic seconds (tests pass their own).
        remember: how many completed ids are remembered (a late `complete` is then 409, not 404).
    """

    def __init__(
        self, idle_timeout_s: float, *, clock: Callable[[], float] = time.monotonic, remember: int = 10_000
    ) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.clock = clock
        self.remember = remember
        self.unrecordable = 0
        self._open: dict[str, Conversation] = {}
        self._by_end: dict[bytes, list[str]] = {}
        self._by_header: dict[str, str] = {}
        self._by_completion: dict[str, str] = {}
        self._closed: OrderedDict[str, str] = OrderedDict()
        self._generations: OrderedDict[str, int] = OrderedDict()

    @property
    def open_count(self) -> int:
        return len(self._open)

    def record(self, call: CapturedCall) -> list[Trace]:
        """Adds a call to its conversation; returns the traces this call completed (refused, cut short, diverged)."""
        problems: list[str] = []
        messages = [to_message(raw, f"messages[{i}]", problems) for i, raw in enumerate(call.request.messages)]
        tools = to_tools(call.request.tools, problems)
        if call.state == "refused":
            refused = self._new(f"capture-{uuid.uuid4().hex}", None, call)
            refused.messages, refused.tools, refused.model = messages, tools, call.request.model
            refused.add_problems(problems)
            outcome = Outcome(verdict=Verdict.ERROR, detail=f"refused: {call.detail}")
            extra = {"capture_header": call.header} if call.header else {}
            return self._built(refused, Completion("refused", outcome, extra))
        done: list[Trace] = []
        digests = prefix_digests(messages)
        conversation = self._conversation_for(call, digests, done)
        self._unindex(conversation)
        conversation.messages.extend(messages[len(conversation.messages) :])
        conversation.digests = digests
        conversation.tools = merge_tools(conversation.tools, tools)
        conversation.model = (call.reply.model if call.reply else "") or call.request.model or conversation.model
        conversation.calls += 1
        conversation.call_seconds += call.seconds
        conversation.last_seen, conversation.updated_at = self.clock(), datetime.now(UTC)
        if call.state == "incomplete" or call.reply is None:
            conversation.add_problems(problems)
            outcome = Outcome(verdict=Verdict.ERROR, detail=f"incomplete: {call.detail}")
            return [*done, *self._close(conversation, Completion("incomplete", outcome))]
        reply = to_message(call.reply.message(), f"messages[{len(conversation.messages)}]", problems)
        conversation.add_problems(problems)
        conversation.messages.append(reply)
        conversation.digests.append(chain(digests[-1], reply))
        conversation.usage = TokenUsage(
            prompt_tokens=conversation.usage.prompt_tokens + call.reply.prompt_tokens,
            completion_tokens=conversation.usage.completion_tokens + call.reply.completion_tokens,
        )
        if call.reply.completion_id:
            conversation.completion_ids.append(call.reply.completion_id)
            self._by_completion[call.reply.completion_id] = conversation.trace_id
        self._by_end.setdefault(conversation.digests[-1], []).append(conversation.trace_id)
        return done

    def _conversation_for(self, call: CapturedCall, digests: list[bytes], done: list[Trace]) -> Conversation:
        if call.header is not None:
            current = self._open.get(self._by_header.get(call.header, ""))
            if current is not None and current.extended_by(digests):
                return current
            if current is not None:
                done.extend(self._close(current, Completion("diverged")))
            conversation = self._new(self._header_trace_id(call.header), call.header, call)
            self._by_header[call.header] = conversation.trace_id
            return conversation
        for k in range(len(digests), 0, -1):
            for trace_id in self._by_end.get(digests[k - 1], ()):
                conversation = self._open[trace_id]
                if conversation.header is None:
                    return conversation
        return self._new(f"capture-{uuid.uuid4().hex}", None, call)

    def _new(self, trace_id: str, header: str | None, call: CapturedCall) -> Conversation:
        conversation = Conversation(trace_id, header, call.started_at, self.clock(), call.started_at)
        if call.state != "refused":
            self._open[trace_id] = conversation
        return conversation

    def _header_trace_id(self, header: str) -> str:
        generation = self._generations.pop(header, 0) + 1
        self._generations[header] = generation
        while len(self._generations) > self.remember:
            self._generations.popitem(last=False)
        return header if generation == 1 else f"{header}.{generation}"

    def _unindex(self, conversation: Conversation) -> None:
        if conversation.digests:
            ids = self._by_end.get(conversation.digests[-1], [])
            if conversation.trace_id in ids:
                ids.remove(conversation.trace_id)
            if not ids:
                self._by_end.pop(conversation.digests[-1], None)

    def complete(self, key: str, feedback: Feedback | None = None) -> Trace:
        """Completes the open trace `key` (its trace id, the header it was grouped by, or one of its completion ids).

        Raises:
            NotFound: no open trace has that key.
            Conflict: it was completed already (by the client, idle timeout, a cut-short call...).
            TracewheelError: its messages cannot form a trace (logged with the reason).
        """
        trace_id = key if key in self._open else self._by_header.get(key) or self._by_completion.get(key)
        conversation = self._open.get(trace_id or "")
        if conversation is None:
            if key in self._closed:
                raise Conflict(f"trace {key!r} was already completed ({self._closed[key]})")
            raise NotFound(
                f"no open captured trace {key!r}: give the {TRACE_HEADER} your calls sent or the id of one of "
                "its chat completions"
            )
        extra: dict[str, str] = {"feedback_thumbs": feedback.thumbs} if feedback is not None and feedback.thumbs else {}
        outcome, task = (feedback.outcome(), feedback.task) if feedback is not None else (None, None)
        traces = self._close(conversation, Completion("client", outcome, extra, task))
        if not traces:
            raise TracewheelError(f"trace {key!r}: its messages cannot form a trace (see the service log)")
        return traces[0]

    def expire(self) -> list[Trace]:
        """Completes every conversation idle for the timeout or longer."""
        deadline = self.clock() - self.idle_timeout_s
        idle = [c for c in self._open.values() if c.last_seen <= deadline]
        return [trace for conversation in idle for trace in self._close(conversation, Completion("idle"))]

    def close_all(self) -> list[Trace]:
        """Completes every open conversation (the service is stopping)."""
        return [t for c in list(self._open.values()) for t in self._close(c, Completion("shutdown"))]

    def _close(self, conversation: Conversation, completion: Completion) -> list[Trace]:
        self._open.pop(conversation.trace_id, None)
        self._unindex(conversation)
        keys = [conversation.trace_id, *conversation.completion_ids]
        if conversation.header is not None and self._by_header.get(conversation.header) == conversation.trace_id:
            del self._by_header[conversation.header]
            keys.append(conversation.header)
        for completion_id in conversation.completion_ids:
            self._by_completion.pop(completion_id, None)
        for key in keys:
            self._closed[key] = completion.by
            self._closed.move_to_end(key)
        while len(self._closed) > self.remember:
            self._closed.popitem(last=False)
        return self._built(conversation, completion)

    def _built(self, conversation: Conversation, completion: Completion) -> list[Trace]:
        """The trace of a conversation ([] when its messages cannot form one; logged)."""
        messages, problems = conversation.messages, list(conversation.problems)
        cut = _valid_length(messages)
        if cut < len(messages):
            problems.append(f"{conversation_problems(messages)[0]}; the trace keeps messages[:{cut}]")
        extra = {
            "capture_completed_by": completion.by,
            "capture_calls": str(conversation.calls),
            "capture_grouping": "header" if conversation.header else "prefix",
            **completion.extra,
        }
        if conversation.completion_ids:
            extra["capture_completion_ids"] = ",".join(conversation.completion_ids)
        span = (conversation.updated_at - conversation.created_at).total_seconds()
        try:
            trace = Trace(
                id=conversation.trace_id,
                created_at=conversation.created_at,
                model=conversation.model,
                tools=conversation.tools,
                messages=messages[:cut],
                task=completion.task,
                outcome=completion.outcome,
                metadata=TraceMetadata(
                    source=SOURCE,
                    usage=conversation.usage,
                    timings_s={"calls_s": round(conversation.call_seconds, 3), "span_s": round(span, 3)},
                    parse_errors=problems,
                    extra=extra,
                ),
            )
        except ValidationError as exc:
            self.unrecordable += 1
            log.error("captured conversation %s cannot be recorded: %s", conversation.trace_id, exc)
            return []
        return [trace]


def _valid_length(messages: list[Message]) -> int:
    """The longest prefix of `messages` in which every tool message answers an open call."""
    for cut in range(len(messages), 0, -1):
        if not conversation_problems(messages[:cut]):
            return cut
    return 0
