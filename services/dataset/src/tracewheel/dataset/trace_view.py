"""What the curation UI shows of a trace: messages prepared for the templates (plain Python)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tracewheel.core.trace import Message, Trace
from tracewheel.dataset.attachments import image_paths

FOLD_CHARS = 1500
"""Tool results longer than this (or than FOLD_LINES lines) start folded."""
FOLD_LINES = 25


@dataclass(frozen=True)
class ToolCallView:
    id: str
    name: str
    arguments: str
    """Pretty-printed JSON (the raw text when it does not parse)."""


@dataclass(frozen=True)
class MessageView:
    index: int
    role: str
    content: str
    reasoning: str
    name: str = ""
    tool_call_id: str = ""
    tool_calls: list[ToolCallView] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    """Screenshots the content mentions, relative to the attachments directory."""
    folded: bool = False
    deletable: bool = True
    """Tool results cannot be deleted alone (`edits.turn_indices`)."""


def pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except json.JSONDecodeError:
        return text


def _is_long(text: str) -> bool:
    return len(text) > FOLD_CHARS or text.count("\n") >= FOLD_LINES


def message_view(index: int, message: Message, attachments_dir: Path | None) -> MessageView:
    content = message.content or ""
    return MessageView(
        index=index,
        role=message.role,
        content=content,
        reasoning=message.reasoning_content or "",
        name=message.name or "",
        tool_call_id=message.tool_call_id or "",
        tool_calls=[ToolCallView(c.id, c.function.name, pretty_json(c.function.arguments)) for c in message.tool_calls],
        images=image_paths(content, attachments_dir) if message.role == "tool" else [],
        folded=message.role == "tool" and _is_long(content),
        deletable=message.role != "tool",
    )


def message_views(trace: Trace, attachments_dir: Path | None) -> list[MessageView]:
    return [message_view(i, m, attachments_dir) for i, m in enumerate(trace.messages)]
