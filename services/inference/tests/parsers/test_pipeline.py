"""The shared parser test mixin (vLLM's pattern), run once per parser configuration.

Every case is checked whole and streamed, for every way of cutting the output into deltas:
all two-way splits, one character at a time, and random multi-way splits (hypothesis). The
streamed deltas, assembled as a client does, must equal the whole-output result.

The mixin lives in this file because test modules are imported with `--import-mode=importlib`,
where one test module cannot import another.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracewheel.inference.parsers import (
    OutputParser,
    ParsedOutput,
    collect_deltas,
    get_reasoning_parser,
    get_tool_parser,
)

TOOL_CALL_ID = re.compile(r"chatcmpl-tool-[0-9a-f]{32}")
HERMES_LOGGER = "tracewheel.inference.parsers.tools.hermes"
REASONING = "The user wants the weather; I should call the tool."


@dataclass(frozen=True)
class ParserTestConfig:
    """Which parsers a test class runs; expectations follow from these.

    Attributes:
        reasoning_parser: Registry name of the reasoning parser, or None for none.
        tool_parser: Registry name of the tool parser, or None for none.
        enable_thinking: The request's `enable_thinking`; False means outputs carry no reasoning.
    """

    reasoning_parser: str | None
    tool_parser: str | None
    enable_thinking: bool = True

    @property
    def splits_reasoning(self) -> bool:
        return self.reasoning_parser is not None and self.enable_thinking


@dataclass(frozen=True)
class Expected:
    reasoning: str | None
    content: str | None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def call(name: str, arguments: Any) -> str:
    """A tool call the way a Hermes-format model writes it."""
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments}, ensure_ascii=False)}\n</tool_call>"


def stream(parser: OutputParser, chunks: list[str]) -> ParsedOutput:
    state = parser.stream()
    deltas = [state.feed(chunk) for chunk in chunks]
    return collect_deltas([*deltas, state.finish()])


def cut(text: str, points: list[int]) -> list[str]:
    bounds = [0, *sorted(set(points)), len(text)]
    return [text[start:end] for start, end in itertools.pairwise(bounds)]


def assert_same(streamed: ParsedOutput, whole: ParsedOutput) -> None:
    assert (streamed.reasoning, streamed.content) == (whole.reasoning, whole.content)
    assert [(c.function.name, c.function.arguments) for c in streamed.tool_calls] == [
        (c.function.name, c.function.arguments) for c in whole.tool_calls
    ]
    assert all(TOOL_CALL_ID.fullmatch(c.id) for c in streamed.tool_calls)


class ParserTests:
    """The mixin: one test per case, plus random chunkings over all cases."""

    config: ClassVar[ParserTestConfig]

    def parser(self) -> OutputParser:
        cfg = self.config
        reasoning = get_reasoning_parser(cfg.reasoning_parser) if cfg.reasoning_parser else None
        tools = get_tool_parser(cfg.tool_parser) if cfg.tool_parser else None
        return OutputParser(
            reasoning_parser=reasoning(enable_thinking=cfg.enable_thinking) if reasoning else None,
            tool_parser=tools() if tools else None,
        )

    def check(self, output: str, expected: Expected) -> ParsedOutput:
        parser = self.parser()
        whole = parser.parse(output)
        assert (whole.reasoning, whole.content) == (expected.reasoning, expected.content)
        assert [(c.function.name, json.loads(c.function.arguments)) for c in whole.tool_calls] == expected.calls
        for tool_call in whole.tool_calls:
            assert TOOL_CALL_ID.fullmatch(tool_call.id)
            arguments = tool_call.function.arguments
            assert arguments == json.dumps(json.loads(arguments), ensure_ascii=False)
        assert len({c.id for c in whole.tool_calls}) == len(whole.tool_calls)
        assert_same(stream(parser, [output]), whole)
        assert_same(stream(parser, list(output)), whole)
        for split in range(len(output) + 1):
            assert_same(stream(parser, cut(output, [split])), whole)
        return whole

    # -- building cases ---------------------------------------------------------------------

    def tool_case(self, body: str, content: str | None, calls: list[tuple[str, Any]]) -> tuple[str, Expected]:
        """`body` as model output (after a reasoning block when the config splits reasoning).

        `content` and `calls` are what the tool parser should find in `body`.
        """
        output, reasoning, lead = body, None, ""
        if self.config.splits_reasoning:
            output, reasoning, lead = f"<think>\n{REASONING}\n</think>\n\n{body}", f"\n{REASONING}\n", "\n\n"
        if self.config.tool_parser is None:
            return output, Expected(reasoning, lead + body)
        return output, Expected(reasoning, None if content is None else lead + content, calls)

    def reasoning_case(self, output: str, reasoning: str | None, content: str | None) -> tuple[str, Expected]:
        """An output without tool calls; the split applies only when the config splits reasoning."""
        if not self.config.splits_reasoning:
            return output, Expected(None, output or None)
        return output, Expected(reasoning, content)

    def case_no_call(self) -> tuple[str, Expected]:
        body = "Hello! I can check the weather <b>for</b> you; just name a city."
        return self.tool_case(body, body, [])

    def case_single_call(self) -> tuple[str, Expected]:
        return self.tool_case(call("get_weather", {"city": "Paris"}), None, [("get_weather", {"city": "Paris"})])

    def case_parallel_calls(self) -> tuple[str, Expected]:
        body = call("get_weather", {"city": "Paris"}) + "\n" + call("get_time", {"tz": "CET"})
        return self.tool_case(body, None, [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})])

    def case_typed_and_nested_arguments(self) -> tuple[str, Expected]:
        args = {"n": 3, "x": -1.5, "ok": True, "none": None, "list": [1, "two", {"three": [3.0]}], "deep": {"a": {}}}
        return self.tool_case(call("configure", args), None, [("configure", args)])

    def case_empty_arguments(self) -> tuple[str, Expected]:
        return self.tool_case(call("list_tabs", {}), None, [("list_tabs", {})])

    def case_escaped_strings(self) -> tuple[str, Expected]:
        args = {"text": 'say "hi" and <b>bold</b> \\o/\n\ttabbed', "path": "C:\\tmp\\{x}"}
        return self.tool_case(call("type_text", args), None, [("type_text", args)])

    def case_unicode(self) -> tuple[str, Expected]:
        args = {"city": "Zürich", "greeting": "こんにちは", "emoji": "🙂"}
        return self.tool_case("Überprüfe… " + call("get_weather", args), "Überprüfe… ", [("get_weather", args)])

    def case_missing_closing_tag(self) -> tuple[str, Expected]:
        body = call("get_weather", {"city": "Oslo"}).removesuffix("</tool_call>")
        return self.tool_case(body, None, [("get_weather", {"city": "Oslo"})])

    def case_text_before_and_after(self) -> tuple[str, Expected]:
        body = "Let me check.\n" + call("get_weather", {"city": "Rome"}) + "\nI will report back."
        return self.tool_case(body, "Let me check.\n", [("get_weather", {"city": "Rome"})])

    def case_whitespace_before_call(self) -> tuple[str, Expected]:
        return self.tool_case(" \n\n" + call("get_time", {}), None, [("get_time", {})])

    def case_malformed_among_good(self) -> tuple[str, Expected]:
        broken = '<tool_call>\n{"name": "broken", "arguments": {"a": }\n</tool_call>'
        body = call("get_weather", {"city": "Paris"}) + "\n" + broken + "\n" + call("get_time", {})
        return self.tool_case(body, body, [])

    def case_reasoning_with_start_tag(self) -> tuple[str, Expected]:
        return self.reasoning_case("<think>\nHmm.\n</think>\n\nThe answer is 4.", "\nHmm.\n", "\n\nThe answer is 4.")

    def case_reasoning_without_start_tag(self) -> tuple[str, Expected]:
        return self.reasoning_case("2 + 2 = 4.\n</think>\n\nIt is 4.", "2 + 2 = 4.\n", "\n\nIt is 4.")

    def case_reasoning_cut_short(self) -> tuple[str, Expected]:
        return self.reasoning_case("<think>\nStill thinking about </thi", "\nStill thinking about </thi", None)

    def case_no_think_tags(self) -> tuple[str, Expected]:
        return self.reasoning_case("Just an answer.", "Just an answer.", None)

    def all_cases(self) -> list[tuple[str, Expected]]:
        return [getattr(self, name)() for name in sorted(dir(self)) if name.startswith("case_")]

    # -- tests ------------------------------------------------------------------------------

    def test_no_call(self) -> None:
        whole = self.check(*self.case_no_call())
        assert whole.tool_calls == []

    def test_single_call(self) -> None:
        self.check(*self.case_single_call())

    def test_parallel_calls(self) -> None:
        self.check(*self.case_parallel_calls())

    def test_typed_and_nested_arguments(self) -> None:
        self.check(*self.case_typed_and_nested_arguments())

    def test_empty_arguments(self) -> None:
        whole = self.check(*self.case_empty_arguments())
        assert [c.function.arguments for c in whole.tool_calls] in ([], ["{}"])

    def test_escaped_strings(self) -> None:
        self.check(*self.case_escaped_strings())

    def test_unicode_is_not_escaped(self) -> None:
        whole = self.check(*self.case_unicode())
        assert all("Zürich" in c.function.arguments for c in whole.tool_calls)

    def test_missing_closing_tag(self) -> None:
        self.check(*self.case_missing_closing_tag())

    def test_text_before_and_after_calls(self) -> None:
        self.check(*self.case_text_before_and_after())

    def test_whitespace_before_call(self) -> None:
        self.check(*self.case_whitespace_before_call())

    def test_malformed_call_falls_back_to_content(self, caplog: pytest.LogCaptureFixture) -> None:
        output, expected = self.case_malformed_among_good()
        with caplog.at_level(logging.WARNING, logger=HERMES_LOGGER):
            self.check(output, expected)
        if self.config.tool_parser is not None:
            warnings = [r for r in caplog.records if r.name == HERMES_LOGGER and r.levelno == logging.WARNING]
            assert warnings
            assert all(repr(expected.content) in r.getMessage() for r in warnings)

    def test_reasoning_with_start_tag(self) -> None:
        self.check(*self.case_reasoning_with_start_tag())

    def test_reasoning_without_start_tag(self) -> None:
        self.check(*self.case_reasoning_without_start_tag())

    def test_reasoning_cut_short(self) -> None:
        self.check(*self.case_reasoning_cut_short())

    def test_no_think_tags(self) -> None:
        self.check(*self.case_no_think_tags())

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.differing_executors])
    @given(data=st.data())
    def test_random_chunkings(self, data: st.DataObject) -> None:
        output, _ = data.draw(st.sampled_from(self.all_cases()), label="case")
        points = data.draw(st.lists(st.integers(0, len(output)), max_size=20), label="cuts")
        parser = self.parser()
        assert_same(stream(parser, cut(output, points)), parser.parse(output))


class TestHermesWithQwen3(ParserTests):
    config = ParserTestConfig(reasoning_parser="qwen3", tool_parser="hermes")


class TestHermesWithQwen3ThinkingDisabled(ParserTests):
    config = ParserTestConfig(reasoning_parser="qwen3", tool_parser="hermes", enable_thinking=False)


class TestHermesAlone(ParserTests):
    config = ParserTestConfig(reasoning_parser=None, tool_parser="hermes")


class TestQwen3Alone(ParserTests):
    config = ParserTestConfig(reasoning_parser="qwen3", tool_parser=None)


def test_collect_deltas_orders_calls_by_index() -> None:
    parser = OutputParser(tool_parser=get_tool_parser("hermes")())
    state = parser.stream()
    state.feed(call("a", {"x": 1}) + call("b", {}))
    message = state.finish()
    assert message is not None
    shuffled = [type(message)(tool_calls=(piece,)) for piece in reversed(message.tool_calls)]
    assert [c.function.name for c in collect_deltas(shuffled).tool_calls] == ["a", "b"]
