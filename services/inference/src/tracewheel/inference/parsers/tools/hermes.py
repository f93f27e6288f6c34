"""The `hermes` tool parser: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`.

Semantics (vLLM's `Hermes2ProToolParser`):
- Without `<tool_call>` the output is plain content, returned as is.
- Each `<tool_call>…</tool_call>` holds one JSON object; a last call may lack its closing
  tag (the body then runs to the end of the output). Calls are found with vLLM's regex, so an
  unclosed tag followed by another call makes one malformed body, as in vLLM.
- Content is the text before the first `<tool_call>`, None when empty or only whitespace;
  text between and after calls is dropped.
- If any call is malformed, there are no tool calls at all: the whole output is content,
  and a WARNING log line carries the (truncated) raw text.
- Arguments are re-serialised with `json.dumps(..., ensure_ascii=False)`.

A call is malformed when its body is not a JSON object, its `name` is not a non-empty
string, or its `arguments` are missing or not a JSON object. As older vLLM did, arguments
written as a string holding a JSON object are accepted (decoded first). vLLM would accept
an empty name or non-object arguments; the OpenAI shape (and `tracewheel.core.trace.ToolCall`)
does not, so they count as malformed here.

Streaming: content before the first `<tool_call>` streams as it comes (held back while it is
only whitespace, and while its tail could be a partial tag). Everything from the first
`<tool_call>` on is held until the end of the stream and parsed as a whole; tool-call pieces
(a header with index, id and name, then the arguments) or, for malformed output, the rest
of the text as content, come out of `finish()`. The trade-off: arguments do not stream token
by token, but a malformed later call can never contradict calls already sent, so the
streamed response always equals the non-streamed one. Models stop right after their calls,
so the delay is a few tokens.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, ClassVar

from tracewheel.core.trace import FunctionCall, ToolCall
from tracewheel.inference.parsers.base import StreamingParser, ToolParser, partial_tag_overlap
from tracewheel.inference.parsers.types import (
    DeltaFunctionCall,
    DeltaMessage,
    DeltaToolCall,
    ExtractedToolCalls,
    delta,
    make_tool_call_id,
)

logger = logging.getLogger(__name__)

TOOL_CALL_START = "<tool_call>"
TOOL_CALL_END = "</tool_call>"
_TOOL_CALL_RE = re.compile(r"<tool_call>(.*?)</tool_call>|<tool_call>(.*)", re.DOTALL)
_LOGGED_CHARS = 2000
"""How much of a malformed output goes into the log line."""


class MalformedToolCall(ValueError):
    """A tool-call body that cannot become an OpenAI tool call (never leaves this module's parser)."""


def parse_tool_call_body(body: str) -> ToolCall:
    """Turn one `<tool_call>` body into a ToolCall with a fresh id.

    Raises:
        MalformedToolCall: The body is not `{"name": <non-empty string>, "arguments": <object>}`.
    """
    try:
        call = json.loads(body)
    except json.JSONDecodeError as exc:
        raise MalformedToolCall(f"not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(call, dict):
        raise MalformedToolCall(f"not a JSON object but {type(call).__name__}")
    name = call.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedToolCall(f"'name' must be a non-empty string, got {name!r}")
    if "arguments" not in call:
        raise MalformedToolCall("no 'arguments'")
    arguments = _decode_arguments(call["arguments"])
    return ToolCall(
        id=make_tool_call_id(),
        function=FunctionCall(name=name, arguments=json.dumps(arguments, ensure_ascii=False)),
    )


def _decode_arguments(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            raise MalformedToolCall("'arguments' is a string that is not JSON") from None
    if not isinstance(arguments, dict):
        raise MalformedToolCall(f"'arguments' must be a JSON object, got {type(arguments).__name__}")
    return arguments


class HermesToolParser(ToolParser):
    """Tool parser for Hermes/Qwen-format output (`--tool-call-parser hermes`)."""

    name: ClassVar[str] = "hermes"

    def extract_tool_calls(self, model_output: str) -> ExtractedToolCalls:
        """Read a whole output (see the module docstring)."""
        if TOOL_CALL_START not in model_output:
            return ExtractedToolCalls(tools_called=False, tool_calls=[], content=model_output or None)
        try:
            bodies = [closed or unclosed for closed, unclosed in _TOOL_CALL_RE.findall(model_output)]
            calls = [parse_tool_call_body(body) for body in bodies]
        except MalformedToolCall as exc:
            logger.warning(
                "malformed tool call (%s); returning the output as plain content. Raw output (%d chars): %r",
                exc,
                len(model_output),
                model_output[:_LOGGED_CHARS],
            )
            return ExtractedToolCalls(tools_called=False, tool_calls=[], content=model_output)
        content = model_output[: model_output.index(TOOL_CALL_START)]
        return ExtractedToolCalls(tools_called=True, tool_calls=calls, content=content if content.strip() else None)

    def stream(self) -> StreamingParser:
        """Return the state for one streamed response."""
        return HermesToolStream(self)


class HermesToolStream(StreamingParser):
    """Streams content up to the first `<tool_call>`; decides the rest at the end (module docstring)."""

    def __init__(self, parser: HermesToolParser) -> None:
        """Args:
        parser: Parses the whole text at the end of the stream.
        """
        self._parser = parser
        self._text = ""
        self._sent = 0
        self._calls_start: int | None = None

    def feed(self, delta_text: str) -> DeltaMessage | None:
        """Take the next piece of content; return the content that is safe to send."""
        search_from = max(0, len(self._text) - len(TOOL_CALL_START) + 1)
        self._text += delta_text
        if self._calls_start is not None:
            return None
        found = self._text.find(TOOL_CALL_START, search_from)
        if found != -1:
            self._calls_start = found
            sendable = found
        else:
            sendable = len(self._text) - partial_tag_overlap(self._text, TOOL_CALL_START)
        if not self._text[:sendable].strip():
            return None
        return self._send_content(sendable)

    def finish(self) -> DeltaMessage | None:
        """End of stream: the held text becomes tool-call pieces, or content when there is no valid call."""
        if self._calls_start is None:
            return self._send_content(len(self._text))
        result = self._parser.extract_tool_calls(self._text)
        if not result.tools_called:
            return self._send_content(len(self._text))
        pieces: list[DeltaToolCall] = []
        for index, call in enumerate(result.tool_calls):
            header = DeltaFunctionCall(name=call.function.name)
            pieces.append(DeltaToolCall(index=index, id=call.id, type="function", function=header))
            pieces.append(DeltaToolCall(index=index, function=DeltaFunctionCall(arguments=call.function.arguments)))
        return delta(tool_calls=tuple(pieces))

    def _send_content(self, end: int) -> DeltaMessage | None:
        content, self._sent = self._text[self._sent : end], max(self._sent, end)
        return delta(content=content)
