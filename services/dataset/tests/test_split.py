"""Train/eval split by trace id, and row deduplication."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracewheel.core.errors import InvalidArgument
from tracewheel.core.trace import validate_trace
from tracewheel.dataset.split import dedup_rows, split_of, split_rows
from tracewheel.dataset.unroll import TrainingRow, unroll_at_user_turns


def two_query_rows(trace_id: str, answer: str = "A") -> list[TrainingRow]:
    trace = validate_trace(
        {
            "id": trace_id,
            "messages": [
                {"role": "user", "content": "q1"},
                {"role": "assistant", "content": answer},
                {"role": "user", "content": "q2"},
                {"role": "assistant", "content": "B"},
            ],
        }
    )
    return unroll_at_user_turns(trace)


@given(st.text(min_size=1), st.floats(0, 1))
def test_the_split_depends_only_on_the_id(trace_id: str, ratio: float) -> None:
    assert split_of(trace_id, ratio) == split_of(trace_id, ratio)
    assert split_of(trace_id, 0.0) == "train"
    assert split_of(trace_id, 1.0) == "eval"


def test_the_ratio_is_about_right_and_the_seed_changes_the_draw() -> None:
    ids = [f"trace-{i}" for i in range(4000)]
    share = sum(split_of(i, 0.1) == "eval" for i in ids) / len(ids)
    assert 0.08 < share < 0.12
    assert [split_of(i, 0.5) for i in ids] != [split_of(i, 0.5, seed="other") for i in ids]


def test_rows_of_one_trace_fall_in_one_split() -> None:
    rows = [row for i in range(200) for row in two_query_rows(f"trace-{i}", answer=str(i))]
    result = split_rows(rows, 0.3)
    train_ids = {row.trace_id for row in result.train}
    eval_ids = {row.trace_id for row in result.eval}
    assert train_ids and eval_ids and not train_ids & eval_ids
    assert len(result.train) + len(result.eval) == len(rows)
    assert result.duplicates_removed == 0


def test_identical_rows_are_kept_once() -> None:
    rows = two_query_rows("trace-a") + two_query_rows("trace-b")
    unique, dropped = dedup_rows(rows)
    assert dropped == 2
    assert [row.trace_id for row in unique] == ["trace-a", "trace-a"]
    different = two_query_rows("trace-c", answer="other")
    assert dedup_rows(rows[:2] + different)[1] == 0  # same last answer, other context: not a duplicate
    assert split_rows(rows, 0.5).duplicates_removed == 2


def test_a_ratio_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="eval_ratio"):
        split_rows([], 1.5)
    with pytest.raises(InvalidArgument):
        split_of("x", -0.1)
