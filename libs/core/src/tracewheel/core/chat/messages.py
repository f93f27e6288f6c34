"""Trace messages and tools as OpenAI chat dicts: what `apply_chat_template` and the OpenAI API take.

The OpenAI shape: `content` always present (None on an assistant turn with only tool calls),
`tool_calls` only when there are some, `tool_call_id` and `name` only where set, tool-call
arguments as the JSON string the model wrote.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from tracewheel.core.trace import Message, Tool

ReasoningKey = Literal["reasoning_content", "reasoning"]
"""Where an assistant turn's reasoning goes: `reasoning_content` (traces, templates, older vLLM)
or `reasoning` (what newer vLLM returns and clients send back)."""


def as_written(message: Message) -> Message:
    r"""`message` with the content the model wrote before its first tool call, as the chat
    templates render it back.

    vLLM's `hermes` parser returns the text before the first `<tool_call>` as content, with the
    newline that separated them ("I'll search.\n"); the templates (Qwen3's and ours) put a
    newline between content and the first call themselves, so the content as returned renders
    as "I'll search.\n\n<tool_call>" where the model wrote one newline. Without that one
    trailing newline it renders as written. Other messages, and content that does not end in a
    newline, are returned as they are. Apply it once: it is not idempotent (docs/inference-parsing.md).
    """
    content = message.content
    if message.role != "assistant" or not message.tool_calls or not content or not content.endswith("\n"):
        return message
    return message.model_copy(update={"content": content[:-1]})


def openai_message(message: Message, *, reasoning_key: ReasoningKey = "reasoning_content") -> dict[str, Any]:
    """One message as an OpenAI chat dict; reasoning, when there is some, under `reasoning_key`."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.reasoning_content is not None:
        out[reasoning_key] = message.reasoning_content
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [call.model_dump(mode="json") for call in message.tool_calls]
    return out


def openai_messages(
    messages: Iterable[Message], *, reasoning_key: ReasoningKey = "reasoning_content"
) -> list[dict[str, Any]]:
    """Every message as an OpenAI chat dict (see `openai_message`)."""
    return [openai_message(message, reasoning_key=reasoning_key) for message in messages]


def openai_tools(tools: Iterable[Tool]) -> list[dict[str, Any]]:
    """Function tools as OpenAI dicts (`{"type": "function", "function": {name, description, parameters}}`)."""
    return [tool.model_dump(mode="json") for tool in tools]
