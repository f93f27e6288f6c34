"""Qwen3 reasoning parser details beyond the shared mixin: edge cases of the tags."""

from __future__ import annotations

import pytest

from tracewheel.inference.parsers import OutputParser, collect_deltas
from tracewheel.inference.parsers.reasoning.qwen3 import Qwen3ReasoningParser

CASES = [
    # (output, reasoning, content) with thinking enabled
    ("<think>\nplan\n</think>\n\nanswer", "\nplan\n", "\n\nanswer"),
    ("plan</think>answer", "plan", "answer"),
    ("  \n<think>plan</think>answer", "plan", "answer"),
    ("<think></think>answer", None, "answer"),
    ("<think>plan</think>", "plan", None),
    ("<think>\nunfinished", "\nunfinished", None),
    ("<think>", None, None),
    ("", None, None),
    ("   ", "   ", None),
    ("<thi", "<thi", None),
    ("plan </thi", "plan </thi", None),
    ("a</think>b</think>c", "a", "b</think>c"),
    ("<think><think>x</think>y", "<think>x", "y"),
    ("text then <think>x</think>y", "text then <think>x", "y"),
    ("no tags at all", "no tags at all", None),
]


def stream_cuts(text: str) -> list[list[str]]:
    return [[text], list(text)] + [[text[:i], text[i:]] for i in range(len(text) + 1)]


@pytest.mark.parametrize(("output", "reasoning", "content"), CASES)
def test_thinking_enabled(output: str, reasoning: str | None, content: str | None) -> None:
    parser = Qwen3ReasoningParser()
    split = parser.extract_reasoning(output)
    assert (split.reasoning, split.content) == (reasoning, content)
    for chunks in stream_cuts(output):
        state = OutputParser(reasoning_parser=parser).stream()
        streamed = collect_deltas([*(state.feed(chunk) for chunk in chunks), state.finish()])
        assert (streamed.reasoning, streamed.content) == (reasoning, content), chunks


@pytest.mark.parametrize("output", ["<think>\nplan\n</think>\n\nanswer", "answer", "a</think>b", ""])
def test_thinking_disabled_makes_everything_content(output: str) -> None:
    parser = Qwen3ReasoningParser(enable_thinking=False)
    split = parser.extract_reasoning(output)
    assert (split.reasoning, split.content) == (None, output or None)
    for chunks in stream_cuts(output):
        state = parser.stream()
        streamed = collect_deltas([*(state.feed(chunk) for chunk in chunks), state.finish()])
        assert (streamed.reasoning, streamed.content) == (None, output or None)


def test_stream_holds_only_what_may_be_a_tag() -> None:
    state = Qwen3ReasoningParser().stream()
    assert state.feed("<th") is None
    assert state.feed("ink>\nI think") is not None
    held = state.feed(" so</th")
    assert held is not None and held.reasoning == " so"
    end = state.feed("ink>\n\nYes")
    assert end is not None and (end.reasoning, end.content) == (None, "\n\nYes")
    assert state.finish() is None
