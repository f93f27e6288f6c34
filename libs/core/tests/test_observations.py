"""The observation window: stubs of earlier tool results, which results are cut, the recorded window."""

import pytest

from tracewheel.core.errors import TraceValidationError
from tracewheel.core.observations import (
    OBSERVATION_WINDOW_KEY,
    OMITTED_MARKER,
    STUB_HEAD_CHARS,
    observation_stub,
    observation_window,
    outside_window,
    windowed,
)
from tracewheel.core.trace import Message, Trace, TraceMetadata

PAGE = (
    "### Page state\n- Page URL: http://shop/item/TW-1\n- Page Title: Blue Lamp\n- Page Snapshot:\n"
    '```yaml\n- heading "Blue Lamp"\n- text: "Price: $7.49"\n```\n\nTask: How much is the Blue Lamp?'
)


def test_a_page_result_keeps_its_url_and_title_and_loses_the_snapshot_and_reminder() -> None:
    stub = observation_stub(PAGE)
    head = "### Page state\n- Page URL: http://shop/item/TW-1\n- Page Title: Blue Lamp\n- Page Snapshot:"
    assert stub == f"{head}\n{OMITTED_MARKER}"


def test_a_short_result_without_a_fenced_block_is_kept_whole() -> None:
    assert observation_stub("User rejected tool call.") == "User rejected tool call."


def test_a_long_result_without_a_fenced_block_keeps_its_head_only() -> None:
    stub = observation_stub("x" * 1000)
    assert stub == "x" * STUB_HEAD_CHARS + f"\n{OMITTED_MARKER}"


def test_a_result_that_opens_with_a_fence_is_only_the_marker() -> None:
    assert observation_stub("```yaml\n- a\n```") == OMITTED_MARKER


def test_outside_window_counts_tool_results_only() -> None:
    roles = ["system", "user", "assistant", "tool", "assistant", "tool", "assistant", "tool"]
    assert outside_window(roles, 1) == [3, 5]
    assert outside_window(roles, 2) == [3]
    assert outside_window(roles, 3) == []
    assert outside_window(roles, 0) == []


def test_windowed_cuts_earlier_results_and_leaves_the_rest_alone() -> None:
    messages = [
        Message(role="user", content="How much?"),
        Message(role="tool", tool_call_id="a", name="browser_navigate", content=PAGE),
        Message(role="tool", tool_call_id="b", name="browser_click", content=PAGE),
    ]
    view = windowed(messages, 1)
    assert view[0] == messages[0] and view[2] == messages[2]
    assert view[1].content == observation_stub(PAGE) and view[1].tool_call_id == "a"
    assert messages[1].content == PAGE  # the input is not changed


def _trace(extra: dict[str, str]) -> Trace:
    return Trace(id="t", messages=[Message(role="user", content="hi")], metadata=TraceMetadata(extra=extra))


def test_the_window_a_trace_was_run_with() -> None:
    assert observation_window(_trace({})) == 0
    assert observation_window(_trace({OBSERVATION_WINDOW_KEY: "2"})) == 2
    with pytest.raises(TraceValidationError, match="observation_window must be an integer >= 0, got 'two'"):
        observation_window(_trace({OBSERVATION_WINDOW_KEY: "two"}))
