"""Reasoning parser then tool parser, as vLLM chains them for one response.

The reasoning parser splits the output first; the tool parser reads only the content. Either
may be absent (no `--reasoning-parser`, or a request without tools / with `tool_choice` none).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tracewheel.core.trace import FunctionCall, ToolCall
from tracewheel.inference.parsers.base import ReasoningParser, StreamingParser, ToolParser
from tracewheel.inference.parsers.types import DeltaMessage, delta, merge_deltas


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    """A whole response, parsed.

    Attributes:
        reasoning: Stored as `reasoning_content` in traces, returned as `reasoning`.
        content: The message content, None when empty.
        tool_calls: The parsed calls; non-empty means finish_reason `tool_calls`.
    """

    reasoning: str | None
    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OutputParser:
    """Parses one model's output for one request, whole or streamed.

    Attributes:
        reasoning_parser: Splits reasoning from content; None treats all output as content.
        tool_parser: Finds tool calls in the content; None leaves content as it is.
    """

    reasoning_parser: ReasoningParser | None = None
    tool_parser: ToolParser | None = None

    def parse(self, model_output: str) -> ParsedOutput:
        """Parse a whole output. Never raises on odd model output."""
        reasoning, content = None, model_output or None
        if self.reasoning_parser is not None:
            split = self.reasoning_parser.extract_reasoning(model_output)
            reasoning, content = split.reasoning, split.content
        if self.tool_parser is None or content is None:
            return ParsedOutput(reasoning=reasoning, content=content)
        found = self.tool_parser.extract_tool_calls(content)
        return ParsedOutput(reasoning=reasoning, content=found.content, tool_calls=found.tool_calls)

    def stream(self) -> StreamingParser:
        """Return the state for one streamed response; its deltas add up to `parse()`'s result."""
        return OutputStream(
            reasoning=self.reasoning_parser.stream() if self.reasoning_parser is not None else None,
            tools=self.tool_parser.stream() if self.tool_parser is not None else None,
        )


class OutputStream(StreamingParser):
    """Feeds the content deltas of the reasoning stream into the tool stream."""

    def __init__(self, *, reasoning: StreamingParser | None, tools: StreamingParser | None) -> None:
        """Args:
        reasoning: The reasoning parser's stream, or None.
        tools: The tool parser's stream, or None.
        """
        self._reasoning = reasoning
        self._tools = tools

    def feed(self, delta_text: str) -> DeltaMessage | None:
        """Take the next piece of generated text."""
        split = self._reasoning.feed(delta_text) if self._reasoning is not None else delta(content=delta_text)
        return self._route(split)

    def finish(self) -> DeltaMessage | None:
        """End of stream: flush both parsers."""
        split = self._reasoning.finish() if self._reasoning is not None else None
        routed = self._route(split)
        return merge_deltas(routed, self._tools.finish() if self._tools is not None else None)

    def _route(self, split: DeltaMessage | None) -> DeltaMessage | None:
        if split is None or self._tools is None or split.content is None:
            return split
        return merge_deltas(delta(reasoning=split.reasoning or ""), self._tools.feed(split.content))


def collect_deltas(deltas: Iterable[DeltaMessage | None]) -> ParsedOutput:
    """Assemble a streamed response's deltas into the whole-response shape, as a client does.

    Text is concatenated; tool-call pieces are grouped by `index` (id and name from the
    header piece, arguments concatenated).

    Raises:
        pydantic.ValidationError: The pieces do not add up to valid tool calls.
    """
    reasoning: list[str] = []
    content: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    for message in deltas:
        if message is None:
            continue
        reasoning.append(message.reasoning or "")
        content.append(message.content or "")
        for piece in message.tool_calls:
            call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = piece.id or call["id"]
            call["name"] += piece.function.name or ""
            call["arguments"] += piece.function.arguments or ""
    tool_calls = [
        ToolCall(id=call["id"], function=FunctionCall(name=call["name"], arguments=call["arguments"]))
        for _, call in sorted(calls.items())
    ]
    return ParsedOutput(reasoning="".join(reasoning) or None, content="".join(content) or None, tool_calls=tool_calls)
