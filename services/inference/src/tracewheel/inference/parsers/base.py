"""The two parser kinds and their streaming counterpart.

A parser object holds only per-request settings and is safe to reuse; `stream()` makes the
per-response state. Every parser has one invariant, which the tests check for every way of
cutting the text into deltas: feeding the deltas to `stream()` and then calling `finish()`
yields, concatenated, exactly what the whole-output method returns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from tracewheel.inference.parsers.types import DeltaMessage, ExtractedReasoning, ExtractedToolCalls


class StreamingParser(ABC):
    """The state of one streamed response."""

    @abstractmethod
    def feed(self, delta_text: str) -> DeltaMessage | None:
        """Take the next piece of generated text; return what can be sent now, if anything."""

    @abstractmethod
    def finish(self) -> DeltaMessage | None:
        """Take the end of the stream; return whatever was held back, if anything."""


class ReasoningParser(ABC):
    """Splits generated text into reasoning and content."""

    name: ClassVar[str]
    """The public name (vLLM's `--reasoning-parser` value)."""

    def __init__(self, *, enable_thinking: bool = True) -> None:
        """Args:
        enable_thinking: The request's `chat_template_kwargs.enable_thinking`; False means
            the prompt already closed the reasoning block, so every generated token is content.
        """
        self.enable_thinking = enable_thinking

    @abstractmethod
    def extract_reasoning(self, model_output: str) -> ExtractedReasoning:
        """Split a whole output. Never raises on odd model output."""

    @abstractmethod
    def stream(self) -> StreamingParser:
        """Return the state for one streamed response (deltas carry reasoning and content)."""


class ToolParser(ABC):
    """Finds tool calls in the content part of generated text."""

    name: ClassVar[str]
    """The public name (vLLM's `--tool-call-parser` value)."""

    @abstractmethod
    def extract_tool_calls(self, model_output: str) -> ExtractedToolCalls:
        """Read a whole output. Malformed calls degrade to plain content and a log line, never an exception."""

    @abstractmethod
    def stream(self) -> StreamingParser:
        """Return the state for one streamed response (deltas carry content and tool-call pieces)."""


def partial_tag_overlap(text: str, tag: str) -> int:
    """Length of the longest proper prefix of `tag` that `text` ends with (0 if none).

    A streaming parser holds that many trailing characters back: they may be the start of
    the tag, split across deltas.
    """
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0
