"""The SmolLM2 chat templates: exact rendering, reasoning placement, assistant masks, round trip.

Rendering goes through transformers' own renderer (`render_jinja_template`, the function behind
`apply_chat_template`), so the `tojson` filter and `{% generation %}` behave as in training.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import jinja2
import pytest
from transformers import PreTrainedTokenizerBase
from transformers.utils.chat_template_utils import render_jinja_template

from tracewheel.core.chat import (
    SERVING_TEMPLATE,
    TEMPLATE_NAMES,
    TRAINING_TEMPLATE,
    UnknownTemplateError,
    load_template,
)
from tracewheel.inference.parsers import OutputParser, get_reasoning_parser, get_tool_parser

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
WEATHER_CALL = {
    "id": "call-1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Zürich"}'},
}
CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a browsing agent."},
    {"role": "user", "content": "What's the weather in Zürich?"},
    {
        "role": "assistant",
        "content": None,
        "reasoning_content": "I need the weather tool.",
        "tool_calls": [WEATHER_CALL],
    },
    {"role": "tool", "tool_call_id": "call-1", "name": "get_weather", "content": '{"temp_c": 3}'},
    {"role": "assistant", "content": "It is 3 °C in Zürich.", "reasoning_content": "The tool answered."},
]
FIRST_ASSISTANT_SPAN = (
    "<think>\nI need the weather tool.\n</think>\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich"}}\n</tool_call><|im_end|>'
)
SECOND_ASSISTANT_SPAN = "<think>\nThe tool answered.\n</think>\nIt is 3 °C in Zürich.<|im_end|>"
EXPECTED = (
    "<|im_start|>system\nYou are a browsing agent.\n\n# Tools\n\n"
    "You may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    '{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city.", '
    '"parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}\n'
    "</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
    "<|im_start|>user\nWhat's the weather in Zürich?<|im_end|>\n"
    f"<|im_start|>assistant\n{FIRST_ASSISTANT_SPAN}\n"
    '<|im_start|>user\n<tool_response>\n{"temp_c": 3}\n</tool_response><|im_end|>\n'
    f"<|im_start|>assistant\n{SECOND_ASSISTANT_SPAN}\n"
)


def render(messages: list[dict[str, Any]], template: str = SERVING_TEMPLATE, **kwargs: Any) -> str:
    rendered, _ = render_jinja_template([messages], chat_template=load_template(template), **kwargs)
    return rendered[0]


def generation_spans(messages: list[dict[str, Any]], **kwargs: Any) -> list[str]:
    (text,), (indices,) = render_jinja_template(
        [messages], chat_template=load_template(TRAINING_TEMPLATE), return_assistant_tokens_mask=True, **kwargs
    )
    return [text[start:end] for start, end in indices]


def test_every_template_loads_and_unknown_names_fail() -> None:
    assert all("<|im_start|>" in load_template(name) for name in TEMPLATE_NAMES)
    with pytest.raises(UnknownTemplateError, match="known templates: smollm2_tools, smollm2_tools_train"):
        load_template("chatml")


def test_training_template_is_the_serving_template_plus_generation_markers() -> None:
    marker_line = re.compile(r"^[ \t]*\{%-? (?:end)?generation -?%\}\n", re.MULTILINE)
    training = load_template(TRAINING_TEMPLATE)
    assert len(marker_line.findall(training)) == 2
    assert marker_line.sub("", training) == load_template(SERVING_TEMPLATE)
    assert not marker_line.findall(load_template(SERVING_TEMPLATE))


def test_conversation_with_tools_renders_exactly() -> None:
    assert render(CONVERSATION, tools=TOOLS) == EXPECTED


def test_with_thinking_disabled_each_agent_step_extends_the_previous_prompt() -> None:
    # the model writes after the prompt's empty think block; the next step's prompt renders that
    # turn the same way, so the text (and the prefix cache) carries over from step to step
    history: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    outputs = [
        {"role": "assistant", "content": "", "tool_calls": [WEATHER_CALL]},
        {"role": "tool", "tool_call_id": "call-1", "content": "sunny"},
    ]
    step_1 = render(history, tools=TOOLS, add_generation_prompt=True, enable_thinking=False)
    step_2 = render(history + outputs, tools=TOOLS, add_generation_prompt=True, enable_thinking=False)
    assert step_1.endswith("<|im_start|>assistant\n<think>\n\n</think>\n")
    assert step_2.startswith(step_1 + "<tool_call>\n")


def test_training_template_renders_the_same_text() -> None:
    for kwargs in ({"tools": TOOLS}, {"add_generation_prompt": True}, {"enable_thinking": False}):
        assert render(CONVERSATION, TRAINING_TEMPLATE, **kwargs) == render(CONVERSATION, **kwargs)


def test_generation_spans_are_the_assistant_turns_including_im_end() -> None:
    assert generation_spans(CONVERSATION, tools=TOOLS) == [FIRST_ASSISTANT_SPAN, SECOND_ASSISTANT_SPAN]


def test_reasoning_kept_only_after_the_last_user_query() -> None:
    messages = [
        {"role": "user", "content": "First question?"},
        {"role": "assistant", "content": "First answer.", "reasoning_content": "old thoughts"},
        {"role": "user", "content": "Second question?"},
        {"role": "assistant", "content": "", "reasoning_content": "new thoughts", "tool_calls": [WEATHER_CALL]},
        {"role": "tool", "tool_call_id": "call-1", "content": "sunny"},
        {"role": "assistant", "content": "Looking further."},
        {"role": "assistant", "content": "Second answer.", "reasoning_content": "final thoughts"},
    ]
    text = render(messages)
    assert "old thoughts" not in text
    assert "<|im_start|>assistant\nFirst answer.<|im_end|>\n" in text
    assert "<|im_start|>assistant\n<think>\nnew thoughts\n</think>\n<tool_call>\n" in text
    assert "<|im_start|>assistant\n<think>\n\n</think>\nLooking further.<|im_end|>\n" in text
    assert text.endswith("<|im_start|>assistant\n<think>\nfinal thoughts\n</think>\nSecond answer.<|im_end|>\n")


def test_last_assistant_turn_gets_an_empty_think_block_as_in_qwen3() -> None:
    text = render([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}])
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\nHello.<|im_end|>\n"


def test_tool_response_wrapped_in_a_user_turn_is_not_a_query() -> None:
    messages = [
        {"role": "user", "content": "Question?"},
        {"role": "assistant", "content": "Step.", "reasoning_content": "kept"},
        {"role": "user", "content": "<tool_response>\nresult\n</tool_response>"},
        {"role": "assistant", "content": "Done."},
    ]
    assert "<think>\nkept\n</think>" in render(messages)


def test_reasoning_is_read_from_every_field_name_and_from_think_tags_in_content() -> None:
    user = {"role": "user", "content": "Q?"}
    expected = "<|im_start|>assistant\n<think>\nwhy\n</think>\nA.<|im_end|>\n"
    for assistant in (
        {"role": "assistant", "content": "A.", "reasoning_content": "why"},
        {"role": "assistant", "content": "A.", "reasoning": "why"},
        {"role": "assistant", "content": "<think>\nwhy\n</think>\n\nA."},
    ):
        assert render([user, assistant]).endswith(expected)


def test_arguments_as_string_or_object_render_the_same() -> None:
    as_object = {**WEATHER_CALL, "function": {"name": "get_weather", "arguments": {"city": "Zürich"}}}
    for call in (WEATHER_CALL, as_object, WEATHER_CALL["function"]):
        messages = [CONVERSATION[1], {"role": "assistant", "content": None, "tool_calls": [call]}]
        assert FIRST_ASSISTANT_SPAN.split("</think>\n")[1] in render(messages)


def test_consecutive_tool_results_share_one_user_turn() -> None:
    messages = [
        {"role": "user", "content": "Q?"},
        {"role": "assistant", "content": "Two calls.", "tool_calls": [WEATHER_CALL, WEATHER_CALL]},
        {"role": "tool", "tool_call_id": "call-1", "content": "A"},
        {"role": "tool", "tool_call_id": "call-1", "content": "B"},
    ]
    text = render(messages)
    assert "Two calls.\n<tool_call>\n" in text
    assert "</tool_call>\n<tool_call>\n" in text
    assert text.endswith(
        "<|im_start|>user\n<tool_response>\nA\n</tool_response>\n<tool_response>\nB\n</tool_response><|im_end|>\n"
    )


def test_generation_prompt_and_disabled_thinking() -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]}]
    assert render(messages) == "<|im_start|>user\nHi there<|im_end|>\n"
    assert render(messages, add_generation_prompt=True).endswith("<|im_end|>\n<|im_start|>assistant\n")
    disabled = render(messages, add_generation_prompt=True, enable_thinking=False)
    assert disabled.endswith("<|im_start|>assistant\n<think>\n\n</think>\n")


def test_unknown_role_is_an_error() -> None:
    with pytest.raises(jinja2.TemplateError, match="Unknown message role: narrator"):
        render([{"role": "narrator", "content": "Once upon a time"}])


def test_rendered_assistant_turns_parse_back_to_the_messages() -> None:
    parser = OutputParser(reasoning_parser=get_reasoning_parser("qwen3")(), tool_parser=get_tool_parser("hermes")())
    assistants = [m for m in CONVERSATION if m["role"] == "assistant"]
    for span, message in zip(generation_spans(CONVERSATION, tools=TOOLS), assistants, strict=True):
        parsed = parser.parse(span.removesuffix("<|im_end|>"))
        assert (parsed.reasoning or "").strip() == message["reasoning_content"]
        assert (parsed.content or "").strip() == (message["content"] or "")
        calls = [(c.function.name, json.loads(c.function.arguments)) for c in parsed.tool_calls]
        expected = [
            (c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message.get("tool_calls", [])
        ]
        assert calls == expected


def test_tokenizer_renders_the_same_and_masks_exactly_the_assistant_spans(
    smollm2_tokenizer: PreTrainedTokenizerBase,
) -> None:
    tokenizer = smollm2_tokenizer
    text = tokenizer.apply_chat_template(
        CONVERSATION, tools=TOOLS, chat_template=load_template(SERVING_TEMPLATE), tokenize=False
    )
    assert text == EXPECTED
    encoded = tokenizer.apply_chat_template(
        CONVERSATION,
        tools=TOOLS,
        chat_template=load_template(TRAINING_TEMPLATE),
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    assert tokenizer.decode(ids) == EXPECTED
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    spans = []
    for masked, group in itertools.groupby(zip(ids, mask, strict=True), key=lambda pair: pair[1]):
        tokens = [token for token, _ in group]
        if masked:
            assert tokens[-1] == im_end
            spans.append(tokenizer.decode(tokens))
    assert spans == [FIRST_ASSISTANT_SPAN, SECOND_ASSISTANT_SPAN]


@pytest.mark.parametrize("thinking", [True, False])
@pytest.mark.parametrize("turn", ["tool_call", "answer"])
def test_a_served_prompt_tokenizes_as_the_start_of_its_training_row(
    smollm2_tokenizer: PreTrainedTokenizerBase, thinking: bool, turn: str
) -> None:
    # A model learns the tokens of whole rows but is served prompts that stop where its turn
    # starts. SmolLM2's tokenizer reads a trailing "\n\n" as one token but "\n\n<" as two "\n":
    # with Qwen3's `</think>\n\n` every served turn started from a token never seen there, and a
    # trained adapter wrote "\n<tool_call>" and never answered (docs/inference.md).
    history = [{"role": "user", "content": "Weather in Paris?"}]
    reply = {"role": "assistant", "content": ""} | (
        {"tool_calls": [WEATHER_CALL]} if turn == "tool_call" else {"content": "It is sunny."}
    )
    if thinking:
        reply["reasoning_content"] = "Look it up."
    template = load_template(SERVING_TEMPLATE)
    kwargs = {"tools": TOOLS, "chat_template": template, "enable_thinking": thinking}

    prompt = smollm2_tokenizer.apply_chat_template(history, add_generation_prompt=True, tokenize=False, **kwargs)
    row = smollm2_tokenizer.apply_chat_template([*history, reply], tokenize=False, **kwargs)
    prompt_ids = smollm2_tokenizer(prompt, add_special_tokens=False)["input_ids"]
    row_ids = smollm2_tokenizer(row, add_special_tokens=False)["input_ids"]

    assert row.startswith(prompt)
    assert row_ids[: len(prompt_ids)] == prompt_ids
