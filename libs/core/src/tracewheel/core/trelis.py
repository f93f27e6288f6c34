"""Reading and writing Trelis workshop trace files.

A workshop file is `{"timestamp", "model", "messages", "tools"}`; assistant messages carry
`reasoning_content` and `tool_calls` with `chatcmpl-tool-*` ids and arguments as JSON strings.
We write the same keys and add ours (`id`, `task`, `outcome`, `metadata`) beside them, so our
files still load in the workshop's scripts and a round trip through a file loses nothing.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tracewheel.core.chat.messages import openai_messages
from tracewheel.core.errors import TraceValidationError
from tracewheel.core.files import write_text_atomically
from tracewheel.core.trace import Trace, validate_trace

_OUR_KEYS = ("id", "task", "outcome", "metadata")


def content_id(messages: list[Any], tools: list[Any], model: str) -> str:
    """A stable id for a trace that has none: the same file imported twice is stored once."""
    canonical = json.dumps({"model": model, "messages": messages, "tools": tools}, sort_keys=True, ensure_ascii=False)
    return "trace-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _parse_timestamp(value: Any) -> datetime:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise TraceValidationError([f"timestamp: expected an ISO 8601 time or epoch seconds, got {value!r}"])


def trace_from_trelis(data: dict[str, Any], *, source: str = "import:trelis") -> Trace:
    """Builds a Trace from a workshop file's JSON object.

    Raises:
        TraceValidationError: the object lacks messages or holds an invalid conversation.
    """
    if not isinstance(data, dict):
        raise TraceValidationError([f"a trace file holds a JSON object, got {type(data).__name__}"])
    unknown = sorted(set(data) - {"timestamp", "model", "messages", "tools", *_OUR_KEYS})
    if unknown:
        raise TraceValidationError([f"unknown top-level keys {unknown}"])
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise TraceValidationError(["messages: missing or not a list"])
    tools = data.get("tools") or []
    model = data.get("model") or ""
    trace_data: dict[str, Any] = {
        "id": data.get("id") or content_id(messages, tools, model),
        "model": model,
        "messages": messages,
        "tools": tools,
        "metadata": data.get("metadata") or {"source": source},
    }
    if "timestamp" in data:
        trace_data["created_at"] = _parse_timestamp(data["timestamp"])
    for key in ("task", "outcome"):
        if data.get(key) is not None:
            trace_data[key] = data[key]
    return validate_trace(trace_data)


def trace_to_trelis(trace: Trace) -> dict[str, Any]:
    """The workshop file's JSON object for a trace (with our extra keys)."""
    dumped = trace.model_dump(mode="json")
    out: dict[str, Any] = {
        "timestamp": trace.created_at.isoformat(),
        "model": trace.model,
        "messages": openai_messages(trace.messages),
        "tools": dumped["tools"],
    }
    for key in _OUR_KEYS:
        if dumped.get(key) is not None:
            out[key] = dumped[key]
    return out


def read_trelis_file(path: Path) -> Trace:
    """Reads one workshop trace file.

    Raises:
        TraceValidationError: naming the file, the field and the message index.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return trace_from_trelis(data)
    except json.JSONDecodeError as exc:
        raise TraceValidationError([f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}"]) from None
    except TraceValidationError as exc:
        raise TraceValidationError([f"{path}: {problem}" for problem in exc.problems]) from None


def write_trelis_file(trace: Trace, directory: Path) -> Path:
    """Writes `<directory>/<trace id>.json` atomically (`files.write_text_atomically`)."""
    target = directory / f"{trace.id}.json"
    write_text_atomically(target, json.dumps(trace_to_trelis(trace), ensure_ascii=False, indent=2))
    return target
