"""Per-turn rows of a windowed trace: unrolled as served, packed as one prefix tree, built into a dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from datasets import load_from_disk

from tracewheel.core.observations import OMITTED_MARKER
from tracewheel.core.trace import validate_trace
from tracewheel.dataset.pack import pack_prefix_tree
from tracewheel.dataset.render import RenderedRow, RenderError, render_row
from tracewheel.dataset.unroll import unroll, unroll_at_user_turns, without_reasoning


def test_a_row_adds_only_what_follows_its_common_prefix_with_the_row_before() -> None:
    first = RenderedRow(input_ids=[1, 2, 3, 4], assistant_masks=[0, 0, 0, 1])
    second = RenderedRow(input_ids=[1, 2, 5, 6, 7], assistant_masks=[0, 0, 0, 0, 1])
    packed = pack_prefix_tree([first, second])
    assert packed.input_ids == [1, 2, 3, 4, 5, 6, 7]
    assert packed.assistant_masks == [0, 0, 0, 1, 0, 0, 1]
    assert packed.parents == [-1, 0, 1, 2, 1, 4, 5]
    assert packed.position_ids == [0, 1, 2, 3, 2, 3, 4]


def test_a_row_whose_target_sits_in_the_shared_prefix_is_refused() -> None:
    first = RenderedRow(input_ids=[1, 2, 3], assistant_masks=[0, 0, 1])
    again = RenderedRow(input_ids=[1, 2, 3, 4], assistant_masks=[0, 1, 1, 1])
    with pytest.raises(RenderError, match=r"trace 't': row 1 .* repeats 3 tokens"):
        pack_prefix_tree([first, again], "t")


def _page(title: str) -> str:
    return f'### Page state\n- Page Title: {title}\n- Page Snapshot:\n```yaml\n- heading "{title}"\n```'


def _windowed(make_trace: Any, window: str = "1") -> dict[str, Any]:
    """A three-turn run (two pages read, then the answer) recorded with an observation window."""
    data = make_trace("run-w", metadata={"extra": {"observation_window": window}})
    navigate, tool, answer = data["messages"][2:5]
    tool["content"] = _page("Home")
    click = {"id": "call-2", "function": {"name": "browser_navigate", "arguments": json.dumps({"url": "http://x/2"})}}
    data["messages"][4:] = [
        {"role": "assistant", "content": "", "reasoning_content": "Open the kettle.", "tool_calls": [click]},
        {"role": "tool", "tool_call_id": "call-2", "name": "browser_navigate", "content": _page("Red kettle")},
        answer,
    ]
    assert navigate["tool_calls"]
    return data


def test_a_windowed_trace_unrolls_to_one_row_per_turn_as_served(make_trace) -> None:
    trace = validate_trace(_windowed(make_trace))
    rows = unroll(trace)
    assert [row.targets for row in rows] == [[2], [4], [6]]
    assert all(row.window == 1 and row.messages[-1] == trace.messages[row.targets[0]] for row in rows)
    assert rows[1].messages[3].content == _page("Home")  # the last result: in full
    assert rows[2].messages[3].content.endswith(OMITTED_MARKER) and rows[2].messages[5].content == _page("Red kettle")
    unwindowed = validate_trace(_windowed(make_trace, "0"))
    assert unroll(unwindowed) == unroll_at_user_turns(unwindowed)


def test_a_build_packs_a_windowed_traces_rows_into_one_tree(store, make_trace, make_builder, tokenizer) -> None:
    store.ingest(validate_trace(_windowed(make_trace)))
    builder = make_builder(reasoning=False)
    result = builder.build()
    table = load_from_disk(str(Path(result.record.path) / "hf"))["train"]
    assert len(table) == 1 and {"position_ids", "parents"} <= set(table.column_names)
    row = table[0]
    assert row["targets"] == [2, 4, 6]
    views = [
        render_row(tokenizer, builder.config.chat_template, without_reasoning(view))
        for view in unroll(store.get("run-w").trace)
    ]
    assert len(row["input_ids"]) < sum(len(view.input_ids) for view in views)
    # each view is the path from its last trained token back to the root, with positions 0..n-1
    trained = [i for i, bit in enumerate(row["assistant_masks"]) if bit]
    ends = [i for i in trained if i + 1 not in trained]
    for end, view in zip(ends, views, strict=True):
        path = [end]
        while row["parents"][path[-1]] >= 0:
            path.append(row["parents"][path[-1]])
        path.reverse()
        assert [row["input_ids"][i] for i in path] == view.input_ids[: len(path)]
        assert [row["position_ids"][i] for i in path] == list(range(len(path)))
    labels = [label for label in row["labels"] if label != -100]
    assert labels == [token for token, bit in zip(row["input_ids"], row["assistant_masks"], strict=True) if bit]
