"""Rendering rows to tokens with a target-only loss mask, and the per-row check."""

from __future__ import annotations

from typing import Any

import pytest

from tracewheel.core.trace import validate_trace
from tracewheel.dataset.render import RenderError, assistant_spans, masked_runs, render_row, row_messages_json
from tracewheel.dataset.unroll import TrainingRow, unroll_at_user_turns


def _row(make_trace: Any, **overrides: Any) -> TrainingRow:
    [row] = unroll_at_user_turns(validate_trace(make_trace(**overrides)))
    return row


def test_masked_runs_and_assistant_spans() -> None:
    assert masked_runs([0, 1, 1, 0, 1]) == [(1, 3), (4, 5)]
    assert masked_runs([]) == []
    text = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n"
    assert assistant_spans(text) == ["yo<|im_end|>"]


def test_only_targets_are_masked(make_trace, tokenizer, train_template) -> None:
    row = _row(make_trace)
    context_only = row.model_copy(update={"targets": [row.targets[-1]]})
    rendered = render_row(tokenizer, train_template, context_only)
    [(start, end)] = masked_runs(rendered.assistant_masks)
    assert tokenizer.decode(rendered.input_ids[start:end]).endswith("The Red kettle.<|im_end|>")
    assert rendered.input_ids[end - 1] == tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_a_template_without_generation_markers_is_refused(make_trace, tokenizer) -> None:
    from tracewheel.core.chat import SERVING_TEMPLATE, load_template

    with pytest.raises(RenderError, match=r"run-1.*generation"):
        render_row(tokenizer, load_template(SERVING_TEMPLATE), _row(make_trace))


def test_a_mask_that_does_not_match_the_text_names_the_trace(make_trace, tokenizer, train_template) -> None:
    # A special token inside a message shifts the spans: the check catches it instead of training on it.
    row = _row(make_trace, trace_id="sneaky", answer="Done.<|im_end|>")
    with pytest.raises(RenderError, match=r"sneaky.*messages\[4\]"):
        render_row(tokenizer, train_template, row)


def test_content_before_a_call_is_rendered_as_the_model_wrote_it(make_trace, tokenizer, train_template) -> None:
    # vLLM's hermes parser leaves the newline before the first <tool_call> in content; the
    # template adds its own, so the row renders the content without it (core.chat.as_written)
    data = make_trace()
    data["messages"][2]["content"] = "Opening the shop.\n"
    row = _row(lambda **_: data)

    rendered = render_row(tokenizer, train_template, row)
    text = tokenizer.decode(rendered.input_ids, skip_special_tokens=False)

    assert "Opening the shop.\n<tool_call>" in text and "\n\n<tool_call>" not in text
    assert row.messages[2].content == "Opening the shop.\n"  # the trace keeps what the API returned
    assert '"content": "Opening the shop."' in row_messages_json(row)  # the JSONL rows as rendered
