"""Property tests (hypothesis) of the Trace model: any valid trace survives JSON and protobuf round
trips unchanged, and arbitrary text or bytes given as a trace raise only TraceValidationError."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracewheel.core.errors import TraceValidationError
from tracewheel.core.trace import (
    Judgment,
    Message,
    Outcome,
    Task,
    TokenUsage,
    Tool,
    Trace,
    TraceMetadata,
    parse_trace_json,
)
from tracewheel.core.trace_proto import trace_from_proto, trace_to_proto
from tracewheel.core.trelis import trace_from_trelis

PROPERTY_SETTINGS = settings(
    max_examples=150, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

text = st.text(max_size=40)
SPLITS = ["", "train", "heldout"]
names = st.text(min_size=1, max_size=20)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=8
)
arguments = st.dictionaries(text, json_values, max_size=3).map(json.dumps)
scores = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
times = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)).map(
    lambda t: t.replace(tzinfo=UTC)
)


@st.composite
def turns(draw: st.DrawFn, index: int) -> list[dict[str, Any]]:
    """One user turn, then an assistant answer that may call tools, and the tools' answers."""
    calls = [
        {"id": f"call-{index}-{n}", "type": "function", "function": {"name": draw(names), "arguments": draw(arguments)}}
        for n in range(draw(st.integers(0, 2)))
    ]
    assistant = {
        "role": "assistant",
        "content": draw(st.none() | text),
        "reasoning_content": draw(st.none() | text),
        "tool_calls": calls,
    }
    answers = [
        {"role": "tool", "tool_call_id": c["id"], "name": c["function"]["name"], "content": draw(text)} for c in calls
    ]
    return [{"role": "user", "content": draw(text)}, assistant, *answers]


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    messages = [Message(role="system", content=draw(text))] if draw(st.booleans()) else []
    for index in range(draw(st.integers(1, 3))):
        messages += [Message.model_validate(m) for m in draw(turns(index))]
    judgments = draw(
        st.lists(st.builds(Judgment, model=text, prompt=text, answer=text, score=scores, reason=text), max_size=2)
    )
    outcome = draw(
        st.none()
        | st.builds(Outcome, score=scores, final_answer=st.none() | text, detail=text, judgments=st.just(judgments))
    )
    metadata = TraceMetadata(
        guidance_prompt=draw(st.none() | text),
        truncation_limit=draw(st.integers(0, 2**31 - 1)),
        timings_s=draw(st.dictionaries(names, st.floats(0, 1e6, allow_nan=False), max_size=2)),
        usage=TokenUsage(
            prompt_tokens=draw(st.integers(0, 2**31 - 1)), completion_tokens=draw(st.integers(0, 2**31 - 1))
        ),
        source=draw(text),
        parse_errors=draw(st.lists(text, max_size=2)),
        extra=draw(st.dictionaries(names, text, max_size=2)),
    )
    tools = draw(st.lists(st.builds(Tool, function=st.builds(dict, name=names, description=text)), max_size=2))
    return Trace(
        id=draw(names),
        created_at=draw(times),
        model=draw(text),
        tools=tools,
        messages=messages,
        task=draw(
            st.none()
            | st.builds(Task, suite=text, task_id=text, prompt=text, split=st.sampled_from(["", "train", "heldout"]))
        ),
        outcome=outcome,
        metadata=metadata,
    )


@PROPERTY_SETTINGS
@given(trace=traces())
def test_a_trace_survives_json(trace: Trace) -> None:
    assert Trace.model_validate_json(trace.model_dump_json()) == trace
    assert parse_trace_json(trace.model_dump_json()) == trace


@PROPERTY_SETTINGS
@given(trace=traces())
def test_a_trace_survives_protobuf(trace: Trace) -> None:
    wire = trace_to_proto(trace).SerializeToString()
    assert trace_from_proto(type(trace_to_proto(trace)).FromString(wire)) == trace


@PROPERTY_SETTINGS
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_as_a_trace_raise_only_trace_validation_error(data: bytes) -> None:
    with contextlib.suppress(TraceValidationError):
        parse_trace_json(data)


@PROPERTY_SETTINGS
@given(
    value=json_values
    | st.dictionaries(st.sampled_from(["timestamp", "model", "messages", "tools", "id"]), json_values, max_size=5)
)
def test_any_json_as_a_workshop_trace_raises_only_trace_validation_error(value: Any) -> None:
    with contextlib.suppress(TraceValidationError):
        trace_from_trelis(value)
