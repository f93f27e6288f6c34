"""A turn with content and tool calls renders back as the model wrote it, with both templates.

vLLM's `hermes` parser (ours matches it) returns the text before the first `<tool_call>` as
content with the newline that separated them; the templates put a newline there themselves. The
response stays as vLLM returns it; `as_written` drops that one newline where turns are rendered
again (training rows, the agent's next request), so the rendered turn is the model's own text.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from tracewheel.core.chat import SERVING_TEMPLATE, as_written, load_template, openai_message, openai_messages
from tracewheel.core.trace import Message
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
PROMPT = [Message(role="system", content="Be brief."), Message(role="user", content="Weather in Zürich and Bern?")]
# what `</think>` is followed by in each template: Qwen3's two newlines, SmolLM2's one
THINK_END = {"qwen3": "</think>\n\n", SERVING_TEMPLATE: "</think>\n"}


def call(city: str) -> str:
    body = json.dumps({"name": "get_weather", "arguments": {"city": city}}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def render(template: str, messages: list[dict[str, Any]], **kwargs: Any) -> str:
    rendered, _ = render_jinja_template([messages], tools=TOOLS, chat_template=load_template(template), **kwargs)
    return rendered[0]


def served_turn(template: str, output: str, *, thinking: bool) -> tuple[str, Message, str]:
    """The prompt vLLM renders, the assistant message it returns for `output`, and the prompt + output."""
    prompt = render(template, openai_messages(PROMPT), add_generation_prompt=True, enable_thinking=thinking)
    parser = OutputParser(get_reasoning_parser("qwen3")(enable_thinking=thinking), get_tool_parser("hermes")())
    parsed = parser.parse(output)
    message = Message(
        role="assistant", content=parsed.content, reasoning_content=parsed.reasoning, tool_calls=parsed.tool_calls
    )
    return prompt, message, prompt + output + "<|im_end|>\n"


def outputs(template: str) -> list[tuple[str, bool]]:
    """Model outputs with text before their calls: thinking, not thinking, parallel calls."""
    both = f"{call('Zürich')}\n{call('Bern')}"
    return [
        (f"<think>\nTwo cities, two calls.\n{THINK_END[template]}Checking both.\n{both}", True),
        (f"Checking Zürich.\n{call('Zürich')}", False),
        (f"First Zürich,\nthen Bern.\n\n{both}", False),
    ]


@pytest.mark.parametrize("template", ["qwen3", SERVING_TEMPLATE])
def test_a_turn_with_content_and_calls_renders_back_as_written(template: str) -> None:
    for output, thinking in outputs(template):
        _prompt, message, served = served_turn(template, output, thinking=thinking)
        assert message.tool_calls and message.content is not None and message.content.endswith("\n")  # as vLLM

        written = render(template, [*openai_messages(PROMPT), openai_message(as_written(message))])
        as_returned = render(template, [*openai_messages(PROMPT), openai_message(message)])

        assert written == served, output
        assert as_returned != served and "\n\n<tool_call>" in as_returned  # the drift as_written removes


@pytest.mark.parametrize("template", ["qwen3", SERVING_TEMPLATE])
def test_turns_without_text_before_their_calls_or_without_calls_are_left_as_they_are(template: str) -> None:
    for output, thinking in [(f"<think>\nOne call.\n{THINK_END[template]}{call('Bern')}", True), ("Sunny.\n", False)]:
        _prompt, message, served = served_turn(template, output, thinking=thinking)

        assert as_written(message) == message
        assert render(template, [*openai_messages(PROMPT), openai_message(message)]) == served
