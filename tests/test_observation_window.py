"""An agent run with an observation window, and the rows the dataset service trains from it.

The agent sends each turn a prompt in which tool results outside the window are stubs; the
trace keeps every result whole. The dataset service must rebuild exactly those prompts, turn by
turn, or an adapter trains on text it is never served (docs/dataset.md).
"""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.loop import run_agent
from tracewheel.agent.testing import ScriptedLLM, StaticToolSession, assistant, tool_call
from tracewheel.agent.tools import ToolOutput
from tracewheel.core.chat import SERVING_TEMPLATE, TRAINING_TEMPLATE, load_template
from tracewheel.core.observations import OBSERVATION_WINDOW_KEY, OMITTED_MARKER
from tracewheel.dataset.pack import pack_prefix_tree
from tracewheel.dataset.render import chat_messages, render_row
from tracewheel.dataset.unroll import unroll, without_reasoning
from tracewheel.inference.testing import TEST_CACHE, smollm2_tokenizer_dir


def _page(title: str) -> str:
    return f'### Page state\n- Page Title: {title}\n- Page Snapshot:\n```yaml\n- heading "{title}"\n```'


class PagedToolSession(StaticToolSession):
    """Answers each call with the next page."""

    def __init__(self, pages: list[str]) -> None:
        super().__init__()
        self.pages = iter(pages)

    async def call_tool(self, name: str, arguments_json: str) -> ToolOutput:
        await super().call_tool(name, arguments_json)
        return ToolOutput(next(self.pages))


async def _windowed_run():
    calls = [
        tool_call("browser_navigate", {"url": "http://shop/"}, "a"),
        tool_call("browser_click", {"ref": "e1"}, "b"),
        tool_call("browser_click", {"ref": "e2"}, "c"),
    ]
    llm = ScriptedLLM([*(assistant(None, tool_calls=[call]) for call in calls), assistant("It costs $7.49.")])
    tools = PagedToolSession([_page("Home"), _page("Lighting"), _page("Blue Lamp")])
    config = LoopOptions(observation_window=1, task_reminder=True, enable_thinking=False, retry_backoff_s=0.001)
    trace = await run_agent("How much is the Blue Lamp?", llm=llm, model="m", tools=tools, config=config)
    return trace, llm.requests


async def test_the_agent_sends_stubs_outside_the_window_and_the_trace_keeps_every_result() -> None:
    trace, requests = await _windowed_run()
    assert trace.metadata.extra[OBSERVATION_WINDOW_KEY] == "1"
    results = [m.content for m in trace.messages if m.role == "tool"]
    assert all("```yaml" in text and text.endswith("Task: How much is the Blue Lamp?") for text in results)
    last_sent = [m["content"] for m in requests[-1]["messages"] if m["role"] == "tool"]
    assert [OMITTED_MARKER in text for text in last_sent] == [True, True, False]
    assert last_sent[-1] == results[-1]


async def test_each_row_of_a_windowed_trace_is_the_prompt_the_agent_sent_then_its_turn() -> None:
    trace, requests = await _windowed_run()
    rows = unroll(trace)
    assert len(rows) == len(requests) == 4
    for row, request in zip(rows, requests, strict=True):
        *prompt, turn = chat_messages(row)
        assert [_text(m) for m in prompt] == [_text(m) for m in request["messages"]]
        assert row.targets == [len(prompt)] and turn["role"] == "assistant"


def _text(message: dict) -> tuple:
    return message["role"], message.get("content") or "", message.get("tool_call_id")


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(smollm2_tokenizer_dir(TEST_CACHE))


async def test_every_served_prompt_tokenizes_as_the_start_of_its_path_in_the_packed_row(tokenizer) -> None:
    trace, requests = await _windowed_run()
    rows = [without_reasoning(row) for row in unroll(trace)]
    rendered = [render_row(tokenizer, load_template(TRAINING_TEMPLATE), row) for row in rows]
    packed = pack_prefix_tree(rendered, trace.id)
    serving = load_template(SERVING_TEMPLATE)
    for index, request in enumerate(requests):
        prompt = tokenizer.apply_chat_template(
            request["messages"],
            tools=request["tools"],
            chat_template=serving,
            add_generation_prompt=True,
            enable_thinking=False,
            tokenize=False,
        )
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        # the path of turn `index` in the packed row: its last trained token, then parents back to the root
        trained = [i for i, bit in enumerate(packed.assistant_masks) if bit]
        end = [i for i in trained if i + 1 not in trained][index]
        path = [end]
        while packed.parents[path[-1]] >= 0:
            path.append(packed.parents[path[-1]])
        path_ids = [packed.input_ids[i] for i in reversed(path)]
        assert path_ids[: len(prompt_ids)] == prompt_ids
        assert [packed.position_ids[i] for i in reversed(path)] == list(range(len(path)))
