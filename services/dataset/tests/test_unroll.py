"""Unrolling at user turns: minimal, complete, reasoning always rendered; and the naive baseline."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracewheel.core.trace import Trace, validate_trace
from tracewheel.core.trelis import read_trelis_file
from tracewheel.dataset.unroll import (
    last_user_index,
    reasoning_rendered,
    unroll_at_user_turns,
    unroll_per_assistant_turn,
)

texts = st.text(alphabet="abc xyz", max_size=6)


@st.composite
def agent_steps(draw: st.DrawFn, query: int) -> list[dict[str, Any]]:
    """Assistant turns answering one query: tool-calling steps, then maybe a final answer."""
    messages: list[dict[str, Any]] = []
    for step in range(draw(st.integers(0, 3))):
        calls = [
            {"id": f"chatcmpl-tool-{query}-{step}-{i}", "function": {"name": "browser_click", "arguments": "{}"}}
            for i in range(draw(st.integers(0, 2)))
        ]
        messages.append(
            {"role": "assistant", "content": draw(texts), "reasoning_content": draw(texts), "tool_calls": calls}
        )
        messages += [{"role": "tool", "tool_call_id": c["id"], "content": draw(texts)} for c in calls]
    if draw(st.booleans()):
        messages.append({"role": "assistant", "content": draw(texts), "reasoning_content": draw(texts)})
    return messages


@st.composite
def conversations(draw: st.DrawFn) -> Trace:
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": "guidance"})
    for query in range(draw(st.integers(1, 4))):
        messages.append({"role": "user", "content": f"query {query}"})
        messages += draw(agent_steps(query))
    return validate_trace({"id": "generated", "messages": messages})


def assistant_indices(trace: Trace) -> list[int]:
    return [i for i, m in enumerate(trace.messages) if m.role == "assistant"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations())
def test_every_assistant_turn_is_trained_once_with_its_reasoning(trace: Trace) -> None:
    rows = unroll_at_user_turns(trace)
    targets = Counter(t for row in rows for t in row.targets)
    assert sorted(targets) == assistant_indices(trace)
    assert set(targets.values()) <= {1}
    for row in rows:
        assert row.messages == trace.messages[: len(row.messages)]  # a prefix of the trace
        assert row.targets and row.targets[-1] == len(row.messages) - 1  # ends at its last target
        query = last_user_index(row.messages)
        assert 0 <= query < row.targets[0]
        assert row.targets == [i for i in range(query, len(row.messages)) if row.messages[i].role == "assistant"]
        assert all(reasoning_rendered(row.messages, t) for t in row.targets)
        assert row.messages[0] == trace.messages[0]  # the guidance system message, when there is one


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations())
def test_one_row_per_answered_query(trace: Trace) -> None:
    roles = [m.role for m in trace.messages]
    answered = sum(
        1
        for i, role in enumerate(roles)
        if role == "user" and "assistant" in roles[i + 1 : [*roles, "user"].index("user", i + 1)]
    )
    assert len(unroll_at_user_turns(trace)) == answered


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations())
def test_the_baseline_trains_earlier_turns_again(trace: Trace) -> None:
    rows = unroll_per_assistant_turn(trace)
    assistants = assistant_indices(trace)
    assert len(rows) == len(assistants)
    for row, end in zip(rows, assistants, strict=True):
        assert len(row.messages) == end + 1
        assert row.targets == [i for i in assistants if i <= end]


def single_query_run() -> Trace:
    return validate_trace(
        {
            "id": "run-1",
            "messages": [
                {"role": "system", "content": "guidance"},
                {"role": "user", "content": "Find the price."},
                {
                    "role": "assistant",
                    "content": "\n\n",
                    "reasoning_content": "Open the page.",
                    "tool_calls": [{"id": "c1", "function": {"name": "browser_navigate", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "page"},
                {"role": "assistant", "content": "$24.99", "reasoning_content": "It says so."},
            ],
        }
    )


def test_a_single_query_run_is_one_row_with_all_reasoning() -> None:
    trace = single_query_run()
    (row,) = unroll_at_user_turns(trace)
    assert row.messages == trace.messages
    assert row.targets == [2, 4]
    assert all(reasoning_rendered(row.messages, t) for t in row.targets)


def test_a_trailing_unanswered_query_makes_no_row() -> None:
    data = single_query_run().model_dump()
    data["messages"].append({"role": "user", "content": "And the shipping cost?"})
    rows = unroll_at_user_turns(validate_trace(data))
    assert [row.targets for row in rows] == [[2, 4]]
    assert len(rows[0].messages) == 5


def test_assistant_turns_before_any_query_are_context_only() -> None:
    data = single_query_run().model_dump()
    data["messages"].insert(1, {"role": "assistant", "content": "Hello, how can I help?"})
    (row,) = unroll_at_user_turns(validate_trace(data))
    assert row.targets == [3, 5]
    assert row.messages[1].content == "Hello, how can I help?"


def test_the_workshop_fixture_unrolls_into_two_rows(fixtures_dir: Path) -> None:
    trace = read_trelis_file(fixtures_dir / "trelis" / "trace_20250601_123000.json")
    rows = unroll_at_user_turns(trace)
    assert [row.targets for row in rows] == [[2, 5], [7, 9]]
    assert [len(row.messages) for row in rows] == [6, 10]
    assert all(row.messages[0].role == "system" for row in rows)
    baseline = unroll_per_assistant_turn(trace)
    assert [row.targets for row in baseline] == [[2], [2, 5], [2, 5, 7], [2, 5, 7, 9]]
    # in the baseline's last row the first query's turns are trained without their reasoning
    assert not reasoning_rendered(baseline[-1].messages, 2)


def test_content_key_ignores_the_trace_id() -> None:
    (row,) = unroll_at_user_turns(single_query_run())
    assert row.model_copy(update={"trace_id": "other"}).content_key() == row.content_key()
    assert row.model_copy(update={"targets": [4]}).content_key() != row.content_key()
