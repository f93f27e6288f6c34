"""Tool results as the model reads them.

A tool (ours or an external MCP server's) answers with parts: text and binary blobs (images,
audio, files). The model reads one text: the text parts joined by newlines, each blob replaced
by a line naming the file it was saved to (under a configurable directory, one sub-directory
per session), so a trace keeps a pointer to the screenshot rather than megabytes of base64.
The text is cut to a configured length, keeping the head, and says so:
`\\n[... truncated N characters ...]`. An empty answer reads `(empty result)`; an error
starts with `### Error` (as @playwright/mcp's do) and has `is_error` set.
"""

from __future__ import annotations

import base64
import itertools
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mcp import types as mcp_types

logger = logging.getLogger(__name__)

EMPTY_RESULT = "(empty result)"
ERROR_HEADING = "### Error"
_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpeg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "audio/wav": ".wav",
    "audio/mpeg": ".mp3",
    "text/markdown": ".md",
    "text/plain": ".txt",
    "application/json": ".json",
}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class TextPart:
    """Text for the model."""

    text: str


@dataclass(frozen=True)
class BlobPart:
    """Binary content, saved to a file; the model reads a line with its path.

    Attributes:
        data: the bytes.
        mime_type: e.g. `image/png`.
        filename: a requested file name; only its last component is used, made safe.
        label: what the model is told it is ("screenshot", "image", "snapshot"…).
    """

    data: bytes
    mime_type: str
    filename: str | None = None
    label: str = "image"


Part = TextPart | BlobPart


@dataclass(frozen=True)
class Attachment:
    """A blob saved beside a result."""

    path: Path
    mime_type: str
    size: int


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returns to the agent: one text, an error flag and saved files."""

    text: str
    is_error: bool = False
    attachments: tuple[Attachment, ...] = ()


def truncate(text: str, max_chars: int) -> str:
    """`text` cut to `max_chars` characters plus a marker saying how many were dropped."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    dropped = len(text) - max_chars
    return f"{text[:max_chars]}\n[... truncated {dropped} characters ...]"


def safe_filename(name: str, mime_type: str) -> str:
    """The last path component of `name`, restricted to [A-Za-z0-9._-], with an extension."""
    base = _UNSAFE_NAME.sub("_", Path(name.replace("\\", "/")).name).strip("._")
    if not base:
        base = "file"
    extension = _EXTENSIONS.get(mime_type, "")
    if extension and not base.lower().endswith(extension):
        stem, dot, old = base.rpartition(".")
        base = stem if dot and f".{old.lower()}" in _EXTENSIONS.values() else base
        base += extension
    return base[:120]


class ResultRenderer:
    """Turns result parts into a ToolResult.

    Args:
        attachments_dir: where blobs are saved (created on first use).
        max_chars: the longest text the model gets; 0 means no limit.
    """

    def __init__(self, attachments_dir: Path, max_chars: int = 20_000) -> None:
        self.attachments_dir = attachments_dir
        self.max_chars = max_chars
        self._counter = itertools.count(1)

    def render(self, parts: Sequence[Part], *, namespace: str = "", is_error: bool = False) -> ToolResult:
        """Joins the parts, saving blobs under `attachments_dir/namespace`.

        Raises:
            OSError: a blob could not be written.
        """
        first_text = next((part.text for part in parts if isinstance(part, TextPart) and part.text), "")
        # an error that already opens with the heading (@playwright/mcp's, the aggregator's) keeps one
        lines: list[str] = [ERROR_HEADING] if is_error and not first_text.startswith(ERROR_HEADING) else []
        attachments: list[Attachment] = []
        for part in parts:
            if isinstance(part, TextPart):
                if part.text:
                    lines.append(part.text)
                continue
            attachment = self._save(part, namespace)
            attachments.append(attachment)
            lines.append(f"[{part.label} saved to {attachment.path} ({attachment.mime_type}, {attachment.size} bytes)]")
        text = "\n".join(lines)
        if not text.strip():
            text = EMPTY_RESULT
        return ToolResult(truncate(text, self.max_chars), is_error, tuple(attachments))

    def error(self, message: str, parts: Sequence[Part] = (), *, namespace: str = "") -> ToolResult:
        """An error result: `### Error`, the message, then any further parts.

        Raises:
            OSError: a blob could not be written.
        """
        return self.render([TextPart(message), *parts], namespace=namespace, is_error=True)

    def _save(self, part: BlobPart, namespace: str) -> Attachment:
        directory = self.attachments_dir / safe_filename(namespace, "") if namespace else self.attachments_dir
        directory.mkdir(parents=True, exist_ok=True)
        if part.filename:
            name = safe_filename(part.filename, part.mime_type)
        else:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            name = safe_filename(f"{part.label}-{stamp}-{next(self._counter):04d}", part.mime_type)
        path = directory / name
        stem, suffix = path.stem, path.suffix
        for n in itertools.count(2):
            if not path.exists():
                break
            path = directory / f"{stem}-{n}{suffix}"
        path.write_bytes(part.data)
        logger.debug("saved %s (%d bytes)", path, len(part.data))
        return Attachment(path.resolve(), part.mime_type, len(part.data))


def parts_from_mcp(content: Sequence[mcp_types.ContentBlock]) -> list[Part]:
    """The parts of an external MCP server's tool result."""
    parts: list[Part] = []
    for block in content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(TextPart(block.text))
        elif isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
            label = "image" if isinstance(block, mcp_types.ImageContent) else "audio"
            parts.append(BlobPart(base64.b64decode(block.data), block.mime_type, label=label))
        elif isinstance(block, mcp_types.ResourceLink):
            parts.append(TextPart(f"[resource link: {block.name} {block.uri}]"))
        elif isinstance(block.resource, mcp_types.TextResourceContents):
            parts.append(TextPart(f"[resource {block.resource.uri}]\n{block.resource.text}"))
        else:
            resource = block.resource
            mime_type = resource.mime_type or "application/octet-stream"
            name = str(resource.uri).rsplit("/", 1)[-1]
            parts.append(BlobPart(base64.b64decode(resource.blob), mime_type, filename=name, label="resource"))
    return parts


def result_from_mcp(result: mcp_types.CallToolResult, renderer: ResultRenderer, namespace: str = "") -> ToolResult:
    """An external MCP server's CallToolResult as the model reads it.

    Raises:
        OSError: a blob could not be written.
    """
    return renderer.render(parts_from_mcp(result.content), namespace=namespace, is_error=bool(result.is_error))
