"""Reading one captured call: the request's model, messages and tools, and the reply, whole
(`chat.completion` JSON) or streamed (`chat.completion.chunk` server-sent events).

Plain functions over bytes, so they are tested without a server. Streamed deltas are
assembled as an OpenAI client does: content and reasoning concatenated, tool calls by their
`index` (id and name from the first delta that has them, arguments concatenated). A reply
that carries `reasoning` and `reasoning_content` (vLLM and this service send both) counts once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ERROR_TEXT_LIMIT = 500


@dataclass(frozen=True)
class CallRequest:
    """What the client asked for."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    stream: bool


def json_object(body: bytes | str, what: str) -> dict[str, Any]:
    """`body` parsed as a JSON object.

    Raises:
        ValueError: not JSON, or not an object; the message starts with `what`.
    """
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def read_request(body: bytes) -> CallRequest:
    """The chat request in `body`.

    Raises:
        ValueError: not JSON, not an object, or `messages` missing or not a list of objects.
    """
    data = json_object(body, "request body")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise ValueError("request messages: expected a non-empty list of objects")
    tools = data.get("tools") or []
    if not isinstance(tools, list):
        raise ValueError("request tools: expected a list")
    return CallRequest(
        str(data.get("model", "")), messages, [t for t in tools if isinstance(t, dict)], bool(data.get("stream"))
    )


@dataclass
class Reply:
    """The assistant turn a call produced, with its usage."""

    completion_id: str = ""
    model: str = ""
    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    """An error the upstream sent instead of (or in the middle of) the reply."""

    def message(self) -> dict[str, Any]:
        """The reply as an OpenAI assistant message (what a client appends to its history)."""
        return {
            "role": "assistant",
            "content": self.content,
            "reasoning_content": self.reasoning,
            "tool_calls": self.tool_calls,
        }

    def read_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.completion_tokens = int(usage.get("completion_tokens") or 0)


def _reasoning(part: dict[str, Any]) -> str | None:
    value = part.get("reasoning")
    return value if value is not None else part.get("reasoning_content")


def _whole_tool_calls(calls: Any) -> list[dict[str, Any]]:
    out = []
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        out.append(
            {
                "id": str(call.get("id") or ""),
                "type": "function",
                "function": {"name": str(function.get("name") or ""), "arguments": arguments},
            }
        )
    return out


def read_json_reply(body: bytes) -> Reply:
    """The reply in a `chat.completion` body (the first choice).

    Raises:
        ValueError: not JSON, or neither choices nor an error.
    """
    data = json_object(body, "reply")
    reply = Reply(completion_id=str(data.get("id") or ""), model=str(data.get("model") or ""))
    if "error" in data:
        reply.error = error_text(data)
        return reply
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("reply: no choices")
    message = choices[0].get("message") or {}
    reply.content = message.get("content")
    reply.reasoning = _reasoning(message)
    reply.tool_calls = _whole_tool_calls(message.get("tool_calls"))
    reply.finish_reason = choices[0].get("finish_reason")
    reply.read_usage(data.get("usage"))
    return reply


class _StreamAssembler:
    """Adds up `chat.completion.chunk` payloads into one Reply."""

    def __init__(self) -> None:
        self.reply = Reply()
        self.calls: dict[int, dict[str, Any]] = {}
        self.content: list[str] = []
        self.reasoning: list[str] = []

    def add(self, data: dict[str, Any]) -> None:
        reply = self.reply
        if "error" in data:
            reply.error = error_text(data)
            return
        reply.completion_id = reply.completion_id or str(data.get("id") or "")
        reply.model = reply.model or str(data.get("model") or "")
        if data.get("usage"):
            reply.read_usage(data["usage"])
        choices = data.get("choices") or []
        choice = next((c for c in choices if isinstance(c, dict) and c.get("index", 0) == 0), None)
        if choice is None:
            return
        delta = choice.get("delta") or {}
        if delta.get("content"):
            self.content.append(delta["content"])
        if reasoning := _reasoning(delta):
            self.reasoning.append(reasoning)
        for position, part in enumerate(delta.get("tool_calls") or []):
            self._add_call(part, position)
        if choice.get("finish_reason"):
            reply.finish_reason = choice["finish_reason"]

    def _add_call(self, part: Any, position: int) -> None:
        if not isinstance(part, dict):
            return
        call = self.calls.setdefault(int(part.get("index", position)), {"id": "", "name": "", "arguments": []})
        call["id"] = call["id"] or str(part.get("id") or "")
        function = part.get("function") or {}
        if function.get("name"):
            call["name"] = call["name"] or function["name"]
        if function.get("arguments"):
            call["arguments"].append(function["arguments"])

    def finish(self) -> Reply:
        reply = self.reply
        reply.content = "".join(self.content) if self.content else None
        reply.reasoning = "".join(self.reasoning) if self.reasoning else None
        reply.tool_calls = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": "".join(c["arguments"])}}
            for _, c in sorted(self.calls.items())
        ]
        return reply


def sse_payloads(body: bytes) -> list[str]:
    """The `data:` payloads of a server-sent event stream, one per event (multi-line data joined by \\n)."""
    payloads: list[str] = []
    data: list[str] = []
    # split on \n only: str.splitlines would also split on U+2028 inside a JSON string
    for raw in body.decode("utf-8", errors="replace").split("\n"):
        raw = raw.removesuffix("\r")
        if not raw:
            if data:
                payloads.append("\n".join(data))
                data = []
        elif raw.startswith("data:"):
            data.append(raw[5:].removeprefix(" "))
    if data:
        payloads.append("\n".join(data))
    return payloads


def read_sse_reply(body: bytes) -> Reply:
    """The reply a streamed body adds up to (`finish_reason` stays None if the stream was cut).

    Raises:
        ValueError: a chunk that is not a JSON object.
    """
    assembler = _StreamAssembler()
    for payload in sse_payloads(body):
        if payload.strip() == "[DONE]":
            break
        try:
            data = json.loads(payload)
        except ValueError as exc:
            raise ValueError(f"reply stream: a chunk is not valid JSON ({exc}): {payload[:100]!r}") from None
        if not isinstance(data, dict):
            raise ValueError(f"reply stream: a chunk is not a JSON object: {payload[:100]!r}")
        assembler.add(data)
    return assembler.finish()


def error_text(data: Any) -> str:
    """The message of an OpenAI error body (`{"error": {"message": ...}}`, or a string error)."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:ERROR_TEXT_LIMIT]
    if isinstance(error, str):
        return error[:ERROR_TEXT_LIMIT]
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])[:ERROR_TEXT_LIMIT]
    return json.dumps(data)[:ERROR_TEXT_LIMIT]


def refusal_text(body: bytes) -> str:
    """What an upstream said when it refused a call: its error message, else the start of its body."""
    try:
        return error_text(json.loads(body))
    except ValueError:
        text = body.decode("utf-8", errors="replace").strip()
        return text[:ERROR_TEXT_LIMIT] or "(empty body)"
