"""Trace edits: each keeps the conversation valid or refuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tracewheel.core.errors import FailedPrecondition, InvalidArgument, TraceValidationError
from tracewheel.core.trace import Trace, validate_trace
from tracewheel.dataset.edits import delete_turn, replace_message_text, strip_guidance, turn_indices

TraceFactory = Callable[..., dict[str, Any]]


def two_queries(make_trace: TraceFactory) -> Trace:
    data = make_trace()
    data["messages"] += [
        {"role": "user", "content": "And the second?"},
        {"role": "assistant", "content": "The Blue teapot.", "reasoning_content": "Second in the list."},
    ]
    return validate_trace(data)


def test_replace_text_changes_only_that_field(make_trace: TraceFactory) -> None:
    trace = validate_trace(make_trace())
    edited = replace_message_text(trace, 4, "The Red kettle, $24.99.")
    assert edited.messages[4].content == "The Red kettle, $24.99."
    assert edited.messages[4].reasoning_content == trace.messages[4].reasoning_content
    assert edited.messages[:4] == trace.messages[:4]
    assert replace_message_text(trace, 2, None, "reasoning_content").messages[2].reasoning_content is None
    with pytest.raises(InvalidArgument, match=r"messages\[9\]: no such message"):
        replace_message_text(trace, 9, "x")


def test_deleting_an_assistant_turn_deletes_its_tool_results(make_trace: TraceFactory) -> None:
    trace = validate_trace(make_trace())
    assert turn_indices(trace, 2) == [2, 3]
    edited = delete_turn(trace, 2)
    assert [m.role for m in edited.messages] == ["system", "user", "assistant"]
    assert edited.messages[2].content == "The Red kettle."


def test_deleting_a_user_query_deletes_its_exchange(make_trace: TraceFactory) -> None:
    trace = two_queries(make_trace)
    edited = delete_turn(trace, 1)
    assert [m.content for m in edited.messages] == [trace.messages[0].content, "And the second?", "The Blue teapot."]
    assert turn_indices(trace, 5) == [5, 6]


def test_a_system_message_goes_alone(make_trace: TraceFactory) -> None:
    trace = validate_trace(make_trace())
    assert delete_turn(trace, 0).messages == trace.messages[1:]


def test_a_tool_result_alone_is_refused(make_trace: TraceFactory) -> None:
    trace = validate_trace(make_trace())
    with pytest.raises(FailedPrecondition, match=r"messages\[3\] is a tool result"):
        delete_turn(trace, 3)


def test_deleting_everything_is_refused(make_trace: TraceFactory) -> None:
    data = make_trace()
    data["messages"] = data["messages"][1:]
    with pytest.raises(TraceValidationError, match="messages"):
        delete_turn(validate_trace(data), 0)


def test_strip_guidance_with_a_recorded_prompt(make_trace: TraceFactory) -> None:
    data = make_trace()
    data["messages"][0]["content"] = "Tool rules: answer with tool calls.\n\n" + data["metadata"]["guidance_prompt"]
    stripped = strip_guidance(validate_trace(data))
    assert stripped.messages[0].content == "Tool rules: answer with tool calls."
    assert stripped.metadata.guidance_stripped
    with pytest.raises(FailedPrecondition, match="already stripped"):
        strip_guidance(stripped)

    only_guidance = strip_guidance(validate_trace(make_trace()))
    assert [m.role for m in only_guidance.messages] == ["user", "assistant", "tool", "assistant"]


def test_strip_guidance_of_an_imported_file_drops_the_leading_system_message(make_trace: TraceFactory) -> None:
    trace = validate_trace(make_trace(metadata={"guidance_prompt": None}))
    stripped = strip_guidance(trace)
    assert stripped.messages == trace.messages[1:]
    assert stripped.metadata.guidance_prompt == trace.messages[0].content
    no_system = validate_trace(
        make_trace(metadata={"guidance_prompt": None}, messages=trace.model_dump()["messages"][1:])
    )
    with pytest.raises(FailedPrecondition, match="no leading system message"):
        strip_guidance(no_system)


def test_strip_guidance_refuses_when_no_system_message_holds_it(make_trace: TraceFactory) -> None:
    trace = validate_trace(make_trace(metadata={"guidance_prompt": "something else"}))
    with pytest.raises(FailedPrecondition, match="no system message holds"):
        strip_guidance(trace)
