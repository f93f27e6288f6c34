"""Trace model: validation, and lossless round trips through proto and Trelis files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracewheel.core.errors import TraceValidationError
from tracewheel.core.trace import Trace, parse_trace_json, validate_trace
from tracewheel.core.trace_proto import trace_from_proto, trace_to_proto
from tracewheel.core.trelis import read_trelis_file, trace_from_trelis, trace_to_trelis, write_trelis_file
from tracewheel.v1 import trace_pb2

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
arguments = st.dictionaries(st.text(max_size=10), json_values, max_size=5).map(
    lambda d: json.dumps(d, ensure_ascii=False)
)
optional_text = st.none() | st.text()


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(st.text())})
    for _turn in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(st.text())})
        for step in range(draw(st.integers(0, 3))):
            calls = [
                {
                    "id": f"chatcmpl-tool-{step}{i}{draw(st.text('0123456789abcdef', min_size=4, max_size=8))}",
                    "type": "function",
                    "function": {"name": draw(st.text(min_size=1, max_size=12)), "arguments": draw(arguments)},
                }
                for i in range(draw(st.integers(0, 4)))
            ]
            messages.append(
                {
                    "role": "assistant",
                    "content": draw(optional_text),
                    "reasoning_content": draw(optional_text),
                    "tool_calls": calls,
                }
            )
            for call in calls:
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": call["id"],
                        "name": call["function"]["name"],
                        "content": draw(st.text()),
                    }
                )
    tools = [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": draw(st.text()),
                "parameters": draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3)),
            },
        }
        for name in draw(st.lists(st.text(min_size=1, max_size=10), max_size=3))
    ]
    data: dict[str, Any] = {
        "id": draw(st.text(min_size=1, max_size=20)),
        "created_at": draw(
            st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))
        ),
        "model": draw(st.text()),
        "tools": tools,
        "messages": messages,
        "metadata": {
            "guidance_prompt": draw(optional_text),
            "guidance_stripped": draw(st.booleans()),
            "truncation_limit": draw(st.integers(0, 10**6)),
            "timings_s": draw(
                st.dictionaries(st.text(max_size=8), st.floats(allow_nan=False, allow_infinity=False), max_size=3)
            ),
            "usage": {"prompt_tokens": draw(st.integers(0, 10**9)), "completion_tokens": draw(st.integers(0, 10**9))},
            "source": draw(st.text(max_size=10)),
            "parse_errors": draw(st.lists(st.text(), max_size=2)),
            "rejected_tool_calls": draw(st.integers(0, 5)),
            "extra": draw(st.dictionaries(st.text(max_size=8), st.text(), max_size=3)),
        },
    }
    if draw(st.booleans()):
        data["task"] = {
            "suite": draw(st.text()),
            "task_id": draw(st.text()),
            "prompt": draw(st.text()),
            "split": draw(st.sampled_from(["", "train", "heldout"])),
        }
    if draw(st.booleans()):
        data["outcome"] = {
            "verdict": draw(st.sampled_from(["unspecified", "passed", "failed", "error"])),
            "score": draw(st.floats(allow_nan=False, allow_infinity=False)),
            "final_answer": draw(optional_text),
            "detail": draw(st.text()),
            "judgments": [
                {
                    "model": draw(st.text(max_size=8)),
                    "base_url": draw(st.text(max_size=8)),
                    "prompt": draw(st.text()),
                    "answer": draw(st.text()),
                    "verdict": draw(st.sampled_from(["unspecified", "passed", "failed", "error"])),
                    "score": draw(st.floats(allow_nan=False, allow_infinity=False)),
                    "reason": draw(st.text()),
                }
                for _ in range(draw(st.integers(0, 2)))
            ],
        }
    return validate_trace(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces())
def test_proto_round_trip_is_lossless(trace: Trace) -> None:
    wire = trace_to_proto(trace).SerializeToString()
    assert trace_from_proto(trace_pb2.Trace.FromString(wire)) == trace


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces())
def test_trelis_round_trip_is_lossless(trace: Trace) -> None:
    text = json.dumps(trace_to_trelis(trace), ensure_ascii=False)
    assert trace_from_trelis(json.loads(text)) == trace


def workshop_file() -> dict[str, Any]:
    """A file as the Trelis workshop writes it: content "\\n\\n" beside reasoning, two tool results."""
    return {
        "timestamp": "2025-06-01T12:30:00.123456",
        "model": "Qwen/Qwen3-30B-A3B",
        "messages": [
            {"role": "system", "content": "You are a browsing agent. Use the tools."},
            {"role": "user", "content": "Open the shop and tell me the first product."},
            {
                "role": "assistant",
                "content": "\n\n",
                "reasoning_content": "I should open the page and take a snapshot.",
                "tool_calls": [
                    {
                        "id": "chatcmpl-tool-a1",
                        "type": "function",
                        "function": {"name": "browser_navigate", "arguments": '{"url": "http://127.0.0.1:8400"}'},
                    },
                    {
                        "id": "chatcmpl-tool-a2",
                        "type": "function",
                        "function": {"name": "browser_snapshot", "arguments": "{}"},
                    },
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "chatcmpl-tool-a1",
                "name": "browser_navigate",
                "content": "Page URL: http://127.0.0.1:8400/",
            },
            {
                "role": "tool",
                "tool_call_id": "chatcmpl-tool-a2",
                "name": "browser_snapshot",
                "content": '- link "Red kettle" [ref=e3]',
            },
            {
                "role": "assistant",
                "content": "The first product is the Red kettle.",
                "reasoning_content": "It is listed first.",
            },
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "browser_navigate",
                    "description": "Go to a URL",
                    "parameters": {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
                },
            }
        ],
    }


def test_workshop_file_imports_and_keeps_its_fields(tmp_path: Path) -> None:
    path = tmp_path / "trace_001.json"
    path.write_text(json.dumps(workshop_file()))
    trace = read_trelis_file(path)
    assert trace.messages[2].content == "\n\n"
    assert trace.messages[2].tool_calls[1].function.arguments == "{}"
    assert trace.metadata.source == "import:trelis"
    written = trace_to_trelis(trace)
    for key in ("model", "messages", "tools"):
        assert written[key] == workshop_file()[key]
    # the same file imported twice gets the same id
    assert read_trelis_file(path).id == trace.id
    assert read_trelis_file(write_trelis_file(trace, tmp_path / "out")) == trace


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["messages"][2]["tool_calls"][0]["function"].update(arguments="{not json"),
            "messages[2].tool_calls[0].function.arguments: not valid JSON",
        ),
        (
            lambda d: d["messages"][2]["tool_calls"][0]["function"].update(arguments="[1, 2]"),
            "messages[2].tool_calls[0].function.arguments: must be a JSON object",
        ),
        (
            lambda d: d["messages"][3].update(tool_call_id="chatcmpl-tool-zz"),
            "messages[3]: tool message answers tool_call_id 'chatcmpl-tool-zz'",
        ),
        (lambda d: d["messages"][1].update(role="robot"), "messages[1].role"),
        (lambda d: d.update(messages=[]), "messages: List should have at least 1 item"),
        (lambda d: d["messages"][4].pop("tool_call_id"), "messages[4]: Value error, a tool message needs tool_call_id"),
    ],
)
def test_invalid_traces_name_the_field_and_message_index(mutate: Any, expected: str) -> None:
    data = workshop_file()
    mutate(data)
    with pytest.raises(TraceValidationError) as error:
        trace_from_trelis(data)
    assert expected.replace("Value error, ", "") in str(error.value)


def test_parse_trace_json_rejects_non_json_and_non_objects() -> None:
    with pytest.raises(TraceValidationError, match="not valid JSON"):
        parse_trace_json("{")
    with pytest.raises(TraceValidationError, match="a trace is a JSON object"):
        parse_trace_json("[]")


def test_bytes_that_are_not_utf8_are_a_validation_error() -> None:
    """Found by test_trace_properties.py: json.loads' UnicodeDecodeError escaped parse_trace_json."""
    with pytest.raises(TraceValidationError, match="not valid UTF-8"):
        parse_trace_json(b"\x80{}")
