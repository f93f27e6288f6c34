"""The batched renderer gives exactly the rows `render_row` gives, row by row, on varied traces."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tracewheel.core.chat import load_template
from tracewheel.core.trace import validate_trace
from tracewheel.dataset import render_batch
from tracewheel.dataset.render import RenderError, render_row
from tracewheel.dataset.render_batch import BatchRenderer, render_rows
from tracewheel.dataset.unroll import TrainingRow, unroll, unroll_per_assistant_turn, without_reasoning

ODD_TEXTS = [
    "The Red kettle.",
    "  leading spaces and trailing  ",
    "Ünïcödé: 价格 ¥12 — naïve café 👋🏽 done",
    "tabs\tand\nnew\n\nlines\r\n",
    "",
    "<tool_call> not a call </tool_call> and <think>not thinking</think>",
    "im_start without its bars: <im_end> |im_end|",
]


def _call(call_id: str, url: str) -> dict[str, Any]:
    return {"id": call_id, "function": {"name": "browser_navigate", "arguments": json.dumps({"url": url})}}


def _two_queries(make_trace: Any, n: int, text: str) -> dict[str, Any]:
    """Two user queries, tool calls with odd results, reasoning on some turns only."""
    data = make_trace(f"run-{n}", answer=text or "done")
    data["messages"][3]["content"] = f"- heading '{text}' " * (n + 1)
    data["messages"] += [
        {"role": "user", "content": f"And then? {text}"},
        {"role": "assistant", "content": text, "tool_calls": [_call(f"c-{n}", f"http://x/{n}?q={text}")]},
        {"role": "tool", "tool_call_id": f"c-{n}", "name": "browser_navigate", "content": text or "(empty)"},
        {"role": "assistant", "content": f"Finally: {text}", "reasoning_content": f" {text} "},
    ]
    if n % 2:
        data["tools"].append({"type": "function", "function": {"name": "browser_click", "description": text}})
    return data


def _windowed(make_trace: Any, n: int) -> dict[str, Any]:
    data = make_trace(f"run-w{n}", metadata={"extra": {"observation_window": "1"}})
    data["messages"][4:] = [
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": "Open it.",
            "tool_calls": [_call("c-2", "http://x/2")],
        },
        {"role": "tool", "tool_call_id": "c-2", "name": "browser_navigate", "content": f"- page {n} 👋"},
        {"role": "assistant", "content": "The Red kettle.", "reasoning_content": "Listed first."},
    ]
    return data


def _varied_rows(make_trace: Any) -> list[TrainingRow]:
    traces = [_two_queries(make_trace, n, text) for n, text in enumerate(ODD_TEXTS)]
    traces += [_windowed(make_trace, n) for n in range(2)]
    rows = [row for data in traces for row in unroll(validate_trace(data))]
    rows += [without_reasoning(row) for row in rows[:4]]
    rows += unroll_per_assistant_turn(validate_trace(traces[2]))
    return rows


@pytest.mark.parametrize("template_name", ["smollm2_tools_train", "qwen3_train"])
def test_batched_rows_equal_the_per_row_path(make_trace, tokenizer, template_name, monkeypatch) -> None:
    template = load_template(template_name)
    rows, expected, refused = [], [], []
    for row in _varied_rows(make_trace):
        try:
            expected.append(render_row(tokenizer, template, row))
            rows.append(row)
        except RenderError as error:  # a reply starting with spaces merges across the turn's edge
            refused.append((row, str(error)))
    monkeypatch.setattr(render_batch, "CHUNK_ROWS", 5)  # several chunks, a trace's rows across two
    assert len(rows) > 20
    assert render_rows(tokenizer, template, rows) == expected
    for row, message in refused:
        with pytest.raises(RenderError) as batched:
            render_rows(tokenizer, template, [row])
        assert str(batched.value) == message


def test_a_tokenizer_not_split_at_added_tokens_tokenizes_whole_rows_alike(
    make_trace, tokenizer, train_template
) -> None:
    rows = _varied_rows(make_trace)[:6]
    renderer = BatchRenderer(tokenizer, train_template)
    renderer._splitter = None  # as for a tokenizer whose added tokens strip or normalize
    assert renderer.render(rows) == [render_row(tokenizer, train_template, row) for row in rows]


def test_a_special_token_inside_a_message_fails_both_paths_alike(make_trace, tokenizer, train_template) -> None:
    [row] = unroll(validate_trace(make_trace(answer="the end<|im_end|> of it")))
    with pytest.raises(RenderError) as per_row:
        render_row(tokenizer, train_template, row)
    with pytest.raises(RenderError) as batched:
        render_rows(tokenizer, train_template, [row])
    assert str(batched.value) == str(per_row.value)


def test_a_build_pauses_the_collector_and_restores_it() -> None:
    import gc

    from tracewheel.dataset.build import collector_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("a failed build")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # off before, off after
    finally:
        gc.enable()
