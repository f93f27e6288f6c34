"""OpenAI chat messages and tools as the Trace's models, and the keys that match a conversation's prefix.

A client sends a conversation back in its own spelling (`reasoning` or `reasoning_content` or
neither, content as a string or text parts, arguments as a string or an object). Each message
is read into `tracewheel.core.trace.Message`; what cannot be kept as sent (an unknown role, an
image part, arguments that are not a JSON object) is written down as a problem, which lands in
the trace's `parse_errors`, so curation rejects the trace rather than training on a guess.

`message_key` is what two spellings of one message share: role, text, tool calls (id, name,
arguments as JSON values) and the tool call answered; reasoning is left out, since many
clients drop it when they send a reply back. `chain` folds the keys into one digest per
prefix, so "does this request extend that conversation" is one dictionary lookup per length.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tracewheel.core.trace import FunctionCall, Message, Tool

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}


def _text(content: Any, where: str, problems: list[str]) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for i, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                problems.append(f"{where}.content[{i}]: a {kind} part is not kept (text only)")
        return "".join(parts)
    problems.append(f"{where}.content: expected a string or a list of parts, got {type(content).__name__}")
    return json.dumps(content, ensure_ascii=False)


def _arguments(value: object, where: str, problems: list[str]) -> str:
    if not isinstance(value, str):
        value = json.dumps(value if value is not None else {}, ensure_ascii=False)
    try:
        FunctionCall(name="x", arguments=value)
    except ValueError:
        problems.append(f"{where}: not a JSON object: {value[:200]!r}")
        return "{}"
    return value


def _tool_calls(calls: Any, where: str, problems: list[str]) -> list[dict[str, Any]]:
    out = []
    for j, call in enumerate(calls if isinstance(calls, list) else []):
        here = f"{where}.tool_calls[{j}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not function.get("name"):
            problems.append(f"{here}: needs function.name")
            continue
        call_id = str(call.get("id") or "")
        if not call_id:
            problems.append(f"{here}: has no id")
            call_id = f"call_{j}"
        arguments = _arguments(function.get("arguments"), f"{here}.function.arguments", problems)
        out.append({"id": call_id, "function": {"name": str(function["name"]), "arguments": arguments}})
    return out


def to_message(raw: dict[str, Any], where: str, problems: list[str]) -> Message:
    """One OpenAI message as a trace Message; what is not kept as sent is added to `problems`."""
    role = ROLES.get(str(raw.get("role")))
    if role is None:
        problems.append(f"{where}.role: {raw.get('role')!r} is not a chat role; kept as a user message")
        role = "user"
    item: dict[str, Any] = {"role": role, "content": _text(raw.get("content"), where, problems)}
    if role == "assistant":
        reasoning = raw.get("reasoning")
        item["reasoning_content"] = reasoning if reasoning is not None else raw.get("reasoning_content")
        item["tool_calls"] = _tool_calls(raw.get("tool_calls"), where, problems)
    elif role == "tool":
        item["tool_call_id"] = str(raw.get("tool_call_id") or "") or "missing"
        if raw.get("name"):
            item["name"] = str(raw["name"])
    return Message.model_validate(item)


def to_messages(raws: list[dict[str, Any]], problems: list[str], start: int = 0) -> list[Message]:
    """Messages `start`, `start+1`, ... of a request as trace Messages."""
    return [to_message(raw, f"messages[{start + i}]", problems) for i, raw in enumerate(raws)]


def to_tools(raws: list[dict[str, Any]], problems: list[str]) -> list[Tool]:
    """The request's function tools as trace Tools (name, description, parameters; other keys dropped)."""
    tools = []
    for i, raw in enumerate(raws):
        function = raw.get("function")
        if raw.get("type", "function") != "function" or not isinstance(function, dict) or not function.get("name"):
            problems.append(f"tools[{i}]: not a function tool with a name; not kept")
            continue
        parameters = function.get("parameters")
        tools.append(
            Tool.model_validate(
                {
                    "function": {
                        "name": function["name"],
                        "description": str(function.get("description") or ""),
                        "parameters": parameters
                        if isinstance(parameters, dict)
                        else {"type": "object", "properties": {}},
                    }
                }
            )
        )
    return tools


def merge_tools(old: list[Tool], new: list[Tool]) -> list[Tool]:
    """Every tool offered in the conversation, in first-offered order; a later definition replaces an earlier one."""
    merged = {tool.function.name: tool for tool in old}
    merged.update({tool.function.name: tool for tool in new})
    return list(merged.values())


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def message_key(message: Message) -> bytes:
    """What identifies a message whichever way a client spells it back (reasoning left out)."""
    calls = [[c.id, c.function.name, _json_value(c.function.arguments)] for c in message.tool_calls]
    key = [message.role, message.content or "", calls, message.tool_call_id or ""]
    return json.dumps(key, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def chain(previous: bytes, message: Message) -> bytes:
    """The digest of a conversation prefix extended by `message`."""
    return hashlib.blake2b(previous + message_key(message), digest_size=16).digest()


def prefix_digests(messages: list[Message], start: bytes = b"") -> list[bytes]:
    """The digest after each message (`result[k-1]` identifies `messages[:k]`)."""
    digests, current = [], start
    for message in messages:
        current = chain(current, message)
        digests.append(current)
    return digests
