"""What the parsers return: whole-output results and streaming deltas (vLLM's shapes).

Finished tool calls are the shared `tracewheel.core.trace.ToolCall` model (OpenAI shape:
`{"id", "type": "function", "function": {"name", "arguments": "<JSON object as a string>"}}`),
so a parsed call goes into a trace without conversion.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from tracewheel.core.trace import ToolCall

TOOL_CALL_ID_PREFIX = "chatcmpl-tool-"


def make_tool_call_id() -> str:
    """Return a fresh tool-call id, `chatcmpl-tool-<32 hex>`, as vLLM makes them."""
    return f"{TOOL_CALL_ID_PREFIX}{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class ExtractedReasoning:
    """A whole output split by a reasoning parser.

    Attributes:
        reasoning: The reasoning text, None when there is none (or it is empty).
        content: The rest of the output, None when empty. Tool parsers read only this.
    """

    reasoning: str | None
    content: str | None


@dataclass(frozen=True, slots=True)
class ExtractedToolCalls:
    """A whole output read by a tool parser (vLLM's `ExtractedToolCallInformation`).

    Attributes:
        tools_called: True when at least one call was parsed; the response's finish_reason
            is then `tool_calls`.
        tool_calls: The calls in output order, ids freshly made.
        content: The text meant for the user: before the first call when tools were called,
            the whole input otherwise. None when empty.
    """

    tools_called: bool
    tool_calls: list[ToolCall]
    content: str | None


@dataclass(frozen=True, slots=True)
class DeltaFunctionCall:
    """Part of a streamed function call: the name once, then argument text fragments."""

    name: str | None = None
    arguments: str | None = None


@dataclass(frozen=True, slots=True)
class DeltaToolCall:
    """One streamed tool-call piece; `index` says which call of the response it belongs to.

    The first piece of a call carries `id`, `type` and `function.name`; later pieces carry
    `function.arguments` fragments whose concatenation is the arguments JSON string.
    """

    index: int
    function: DeltaFunctionCall
    id: str | None = None
    type: Literal["function"] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the OpenAI `choices[].delta.tool_calls[]` item, unset fields left out."""
        out: dict[str, Any] = {"index": self.index}
        if self.id is not None:
            out["id"] = self.id
        if self.type is not None:
            out["type"] = self.type
        function = {key: value for key in ("name", "arguments") if (value := getattr(self.function, key)) is not None}
        out["function"] = function
        return out


@dataclass(frozen=True, slots=True)
class DeltaMessage:
    """What one streaming step adds to the response (vLLM's `DeltaMessage`)."""

    reasoning: str | None = None
    content: str | None = None
    tool_calls: tuple[DeltaToolCall, ...] = field(default=())


def delta(reasoning: str = "", content: str = "", tool_calls: tuple[DeltaToolCall, ...] = ()) -> DeltaMessage | None:
    """Build a DeltaMessage from possibly empty pieces; None when there is nothing to send."""
    if not reasoning and not content and not tool_calls:
        return None
    return DeltaMessage(reasoning=reasoning or None, content=content or None, tool_calls=tool_calls)


def merge_deltas(*deltas: DeltaMessage | None) -> DeltaMessage | None:
    """Join consecutive deltas into one (text concatenated, tool-call pieces in order)."""
    present = [d for d in deltas if d is not None]
    return delta(
        reasoning="".join(d.reasoning or "" for d in present),
        content="".join(d.content or "" for d in present),
        tool_calls=tuple(call for d in present for call in d.tool_calls),
    )
