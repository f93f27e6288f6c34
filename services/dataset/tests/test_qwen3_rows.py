"""Rows of a multi-query trace built with Qwen3's training template train each assistant turn,
reasoning included, exactly as the serving template (what vLLM serves) renders it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from datasets import load_from_disk

from tracewheel.core.chat import load_template, openai_messages, openai_tools
from tracewheel.core.trace import validate_trace
from tracewheel.dataset.build import load_chat_template
from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.render import RenderError, masked_runs, render_row
from tracewheel.dataset.unroll import unroll_per_assistant_turn

TOOLS = [{"type": "function", "function": {"name": "browser_navigate", "description": "Go to a URL"}}]


def navigate(call_id: str, url: str) -> dict[str, Any]:
    return {"id": call_id, "function": {"name": "browser_navigate", "arguments": json.dumps({"url": url})}}


def result(call_id: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "name": "browser_navigate", "content": content}


# Two queries: turns 2 and 4 answer the first, 6 (two calls at once) and 9 the second.
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a careful browsing agent."},
    {"role": "user", "content": "What is the first product?"},
    {"role": "assistant", "content": "", "reasoning_content": "Open the shop.", "tool_calls": [navigate("c1", "/")]},
    result("c1", "- link 'Red kettle'"),
    {"role": "assistant", "content": "The Red kettle.", "reasoning_content": "It is listed first."},
    {"role": "user", "content": "And its price?"},
    {
        "role": "assistant",
        "content": "Opening both.",
        "reasoning_content": "Product page and cart.",
        "tool_calls": [navigate("c2", "/kettle"), navigate("c3", "/cart")],
    },
    result("c2", "- text '$24.99'"),
    result("c3", "- text 'empty'"),
    {"role": "assistant", "content": "It costs $24.99.", "reasoning_content": "The page shows it."},
]


def call_text(url: str) -> str:
    return f'<tool_call>\n{{"name": "browser_navigate", "arguments": {{"url": "{url}"}}}}\n</tool_call>'


TRAINED = {
    2: f"<think>\nOpen the shop.\n</think>\n\n{call_text('/')}<|im_end|>",
    4: "<think>\nIt is listed first.\n</think>\n\nThe Red kettle.<|im_end|>",
    6: "<think>\nProduct page and cart.\n</think>\n\nOpening both.\n"
    f"{call_text('/kettle')}\n{call_text('/cart')}<|im_end|>",
    9: "<think>\nThe page shows it.\n</think>\n\nIt costs $24.99.<|im_end|>",
}


def served_prompt(tokenizer: Any, end: int) -> str:
    """What vLLM renders for the turn at `end`: the serving template on the messages before it."""
    trace = validate_trace(trace_data())
    return tokenizer.apply_chat_template(
        openai_messages(trace.messages[:end]),
        tools=openai_tools(trace.tools),
        chat_template=load_template("qwen3"),
        add_generation_prompt=True,
        tokenize=False,
    )


def trace_data() -> dict[str, Any]:
    return {"id": "two-queries", "model": "Qwen/Qwen3-4B", "tools": TOOLS, "messages": MESSAGES}


def test_a_qwen3_base_model_builds_with_qwens_training_template() -> None:
    assert load_chat_template("", "Qwen/Qwen3-4B") == load_template("qwen3_train")


def test_each_row_trains_its_querys_turns_as_the_serving_template_renders_them(store, make_builder, tokenizer) -> None:
    store.ingest(validate_trace(trace_data()))
    store.set_status("two-queries", CurationStatus.APPROVED)
    built = make_builder(base_model="Qwen/Qwen3-4B", chat_template=load_template("qwen3_train")).build()
    rows = sorted(load_from_disk(str(Path(built.record.path) / "hf"))["train"], key=lambda row: row["targets"])

    assert [row["targets"] for row in rows] == [[2, 4], [6, 9]]
    for row in rows:
        text = tokenizer.decode(row["input_ids"])
        trained = [tokenizer.decode(row["input_ids"][start:end]) for start, end in masked_runs(row["assistant_masks"])]
        assert trained == [TRAINED[index] for index in row["targets"]]
        for index in row["targets"]:
            # the served prompt, then what the model wrote: the row trains the turn as it was served
            assert text.startswith(served_prompt(tokenizer, index) + TRAINED[index])
    later = tokenizer.decode(rows[1]["input_ids"])
    assert "Open the shop." not in later and "The Red kettle.<|im_end|>" in later  # earlier query: context only


def test_a_target_before_the_rows_last_query_is_refused(tokenizer) -> None:
    # The workshop baseline trains every turn of a row: Qwen3 renders the first query's turns
    # without their reasoning, text the model never wrote, so its template does not mark them.
    *_, last = unroll_per_assistant_turn(validate_trace(trace_data()))

    assert last.targets == [2, 4, 6, 9]
    with pytest.raises(RenderError, match=r"two-queries.*marks 2 of the row's 4 assistant turns.*messages\[2\]"):
        render_row(tokenizer, load_template("qwen3_train"), last)
    trained = render_row(tokenizer, load_template("qwen3_train"), last.model_copy(update={"targets": [6, 9]}))
    assert trained.supervised_tokens > 0
