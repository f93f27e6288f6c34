"""Hermes parser details beyond the shared mixin: vLLM's quirks and the malformed-call rules."""

from __future__ import annotations

import json
import logging
import re

import pytest

from tracewheel.inference.parsers import DeltaFunctionCall, DeltaToolCall, OutputParser, collect_deltas
from tracewheel.inference.parsers.tools.hermes import HermesToolParser

LOGGER = "tracewheel.inference.parsers.tools.hermes"


def parse_both_ways(text: str) -> tuple[bool, str | None, list[tuple[str, str]]]:
    """Parse whole and one character at a time; assert they agree and return the result."""
    whole = HermesToolParser().extract_tool_calls(text)
    state = OutputParser(tool_parser=HermesToolParser()).stream()
    streamed = collect_deltas([*(state.feed(char) for char in text), state.finish()])
    calls = [(c.function.name, c.function.arguments) for c in whole.tool_calls]
    assert streamed.content == whole.content
    assert [(c.function.name, c.function.arguments) for c in streamed.tool_calls] == calls
    assert whole.tools_called == bool(calls)
    return whole.tools_called, whole.content, calls


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("{not json}", id="bad-json"),
        pytest.param("", id="empty-body"),
        pytest.param('["get_time", {}]', id="not-an-object"),
        pytest.param('{"arguments": {}}', id="missing-name"),
        pytest.param('{"name": "", "arguments": {}}', id="empty-name"),
        pytest.param('{"name": 7, "arguments": {}}', id="name-not-a-string"),
        pytest.param('{"name": "get_time"}', id="missing-arguments"),
        pytest.param('{"name": "get_time", "arguments": [1, 2]}', id="arguments-a-list"),
        pytest.param('{"name": "get_time", "arguments": "[1, 2]"}', id="arguments-a-string-of-a-list"),
        pytest.param('{"name": "get_time", "arguments": "not json"}', id="arguments-a-plain-string"),
    ],
)
def test_malformed_call_makes_everything_content(body: str, caplog: pytest.LogCaptureFixture) -> None:
    text = f"Checking.\n<tool_call>\n{body}\n</tool_call>"
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert parse_both_ways(text) == (False, text, [])
    assert [r.levelno for r in caplog.records if r.name == LOGGER] == [logging.WARNING] * 2  # whole + streamed


def test_log_line_is_truncated(caplog: pytest.LogCaptureFixture) -> None:
    text = "<tool_call>{broken " + "x" * 10_000
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        HermesToolParser().extract_tool_calls(text)
    (record,) = caplog.records
    assert "10019 chars" in record.getMessage()
    assert len(record.getMessage()) < 2500


def test_arguments_as_a_json_string_are_decoded() -> None:
    text = '<tool_call>{"name": "f", "arguments": "{\\"a\\":1}"}</tool_call>'
    assert parse_both_ways(text) == (True, None, [("f", '{"a": 1}')])


def test_arguments_are_reserialised_without_ascii_escapes() -> None:
    text = '<tool_call>{"name":"f","arguments":{"city":"Z\\u00fcrich","n":[1,2]}}</tool_call>'
    assert parse_both_ways(text) == (True, None, [("f", '{"city": "Zürich", "n": [1, 2]}')])


def test_unclosed_call_swallows_the_next_one_as_in_vllm(caplog: pytest.LogCaptureFixture) -> None:
    # vLLM's regex: an unclosed <tool_call> body runs on through the next call, so it is malformed.
    text = '<tool_call>{"name": "a", "arguments": {}}\n<tool_call>{"name": "b", "arguments": {}}</tool_call>'
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert parse_both_ways(text) == (False, text, [])


def test_closing_tag_inside_an_argument_string_ends_the_call_as_in_vllm(caplog: pytest.LogCaptureFixture) -> None:
    text = '<tool_call>{"name": "type", "arguments": {"text": "</tool_call>"}}</tool_call>'
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert parse_both_ways(text) == (False, text, [])


@pytest.mark.parametrize(
    ("text", "content"),
    [("", None), (" \n", " \n"), ("plain <tool answer", "plain <tool answer"), ("<tool_call", "<tool_call")],
)
def test_output_without_a_call_is_content_as_is(text: str, content: str | None) -> None:
    assert parse_both_ways(text) == (False, content, [])


def test_text_between_calls_is_dropped() -> None:
    text = 'A<tool_call>{"name": "a", "arguments": {}}</tool_call>B<tool_call>{"name": "b", "arguments": {}}'
    assert parse_both_ways(text) == (True, "A", [("a", "{}"), ("b", "{}")])


def test_tool_call_ids_are_fresh_and_openai_shaped() -> None:
    result = HermesToolParser().extract_tool_calls('<tool_call>{"name": "a", "arguments": {"x": 1}}</tool_call>' * 2)
    first, second = result.tool_calls
    assert first.id != second.id
    assert re.fullmatch(r"chatcmpl-tool-[0-9a-f]{32}", first.id)
    function = {"name": "a", "arguments": '{"x": 1}'}
    assert first.model_dump() == {"id": first.id, "type": "function", "function": function}


def test_stream_sends_content_before_the_call_early_and_the_call_at_the_end() -> None:
    state = HermesToolParser().stream()
    first = state.feed("Let me look. <tool")
    assert first is not None and first.content == "Let me look. "
    assert state.feed('_call>{"name": "a", "arguments": {"q": "x"}}') is None
    assert state.feed("</tool_call>") is None
    end = state.finish()
    assert end is not None and end.content is None
    header, arguments = end.tool_calls
    assert (header.index, header.type, header.function.name, header.function.arguments) == (0, "function", "a", None)
    assert (arguments.index, arguments.id, arguments.function) == (0, None, DeltaFunctionCall(arguments='{"q": "x"}'))
    assert json.loads(arguments.function.arguments or "") == {"q": "x"}


def test_delta_tool_call_to_dict_leaves_unset_fields_out() -> None:
    header = DeltaToolCall(index=1, id="chatcmpl-tool-1", type="function", function=DeltaFunctionCall(name="f"))
    fragment = DeltaToolCall(index=1, function=DeltaFunctionCall(arguments='{"a"'))
    assert header.to_dict() == {"index": 1, "id": "chatcmpl-tool-1", "type": "function", "function": {"name": "f"}}
    assert fragment.to_dict() == {"index": 1, "function": {"arguments": '{"a"'}}
