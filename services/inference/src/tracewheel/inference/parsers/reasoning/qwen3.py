"""The `qwen3` reasoning parser: `<think>reasoning</think>content`.

Semantics (vLLM's `Qwen3ReasoningParser`, current form):
- Thinking enabled (the default): a leading `<think>` is stripped; the text before the first
  `</think>` is reasoning and the text after it is content, returned as is (Qwen3 writes
  `</think>\\n\\n`, so content usually starts with newlines; vLLM does not strip them either).
  Without `</think>` the output was cut short inside the reasoning, so all of it is reasoning.
- Thinking disabled (`enable_thinking=False`): the prompt already holds the empty
  `<think>\\n\\n</think>\\n\\n`, so every generated character is content, unparsed.
- Empty reasoning or content is None.

Choices where vLLM is silent or odd, kept so that streaming can match exactly:
- "Leading" means at the start of the output after optional whitespace, which is dropped
  with the tag. vLLM strips the first `<think>` wherever it is and drops what precedes it;
  the two agree on every output a Qwen3-format model writes (it starts with `<think>` or
  with reasoning), and ours never has to hold an unbounded amount of text while streaming.
- Newer vLLM also ends reasoning at a `<tool_call>` written before any `</think>` (a
  Qwen3.5 habit). The project contract says a missing `</think>` makes everything
  reasoning, so that rule is not applied here.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from tracewheel.inference.parsers.base import ReasoningParser, StreamingParser, partial_tag_overlap
from tracewheel.inference.parsers.types import DeltaMessage, ExtractedReasoning, delta

THINK_START = "<think>"
THINK_END = "</think>"


def _strip_leading_start_tag(text: str) -> str:
    stripped = text.lstrip()
    if stripped.startswith(THINK_START):
        return stripped[len(THINK_START) :]
    return text


class Qwen3ReasoningParser(ReasoningParser):
    """Reasoning parser for Qwen3-format output (`--reasoning-parser qwen3`)."""

    name: ClassVar[str] = "qwen3"

    def extract_reasoning(self, model_output: str) -> ExtractedReasoning:
        """Split a whole output into reasoning and content (see the module docstring)."""
        if not self.enable_thinking:
            return ExtractedReasoning(reasoning=None, content=model_output or None)
        text = _strip_leading_start_tag(model_output)
        reasoning, found_end, content = text.partition(THINK_END)
        if not found_end:
            return ExtractedReasoning(reasoning=text or None, content=None)
        return ExtractedReasoning(reasoning=reasoning or None, content=content or None)

    def stream(self) -> StreamingParser:
        """Return the state for one streamed response."""
        return Qwen3ReasoningStream(enable_thinking=self.enable_thinking)


_Phase = Literal["start", "reasoning", "content"]


class Qwen3ReasoningStream(StreamingParser):
    """Streams reasoning until `</think>`, then content.

    Held back: at the start, whitespace and a possible partial `<think>` (they are dropped
    if the tag completes); inside the reasoning, a possible partial `</think>`.
    """

    def __init__(self, *, enable_thinking: bool = True) -> None:
        """Args:
        enable_thinking: As for `Qwen3ReasoningParser`; False streams everything as content.
        """
        self._phase: _Phase = "start" if enable_thinking else "content"
        self._held = ""

    def feed(self, delta_text: str) -> DeltaMessage | None:
        """Take the next piece of text; return the reasoning and content it settles."""
        if self._phase == "content":
            return delta(content=delta_text)
        self._held += delta_text
        if self._phase == "start":
            stripped = self._held.lstrip()
            if len(stripped) < len(THINK_START) and THINK_START.startswith(stripped):
                return None
            self._phase = "reasoning"
            self._held = _strip_leading_start_tag(self._held)
        reasoning, found_end, content = self._held.partition(THINK_END)
        if found_end:
            self._phase = "content"
            self._held = ""
            return delta(reasoning=reasoning, content=content)
        sendable = len(self._held) - partial_tag_overlap(self._held, THINK_END)
        reasoning, self._held = self._held[:sendable], self._held[sendable:]
        return delta(reasoning=reasoning)

    def finish(self) -> DeltaMessage | None:
        """End of stream: what was held back is reasoning (no `</think>` came)."""
        held, self._held = self._held, ""
        if self._phase == "content":
            return None
        return delta(reasoning=held)
