"""Control flow of the agent loop, with a scripted model and an instant tool session."""

import asyncio
import json

import openai
import pytest

from tracewheel.agent.conversation import LoopOptions, clip_result
from tracewheel.agent.loop import REJECTED_MESSAGE, run_agent
from tracewheel.agent.testing import ScriptedLLM, StaticToolSession, assistant, tool_call
from tracewheel.core.trace import Task, Verdict, validate_trace

FAST = LoopOptions(retry_backoff_s=0.001)


def _roundtrip(trace):
    return validate_trace(trace.model_dump(mode="json"))


async def test_final_answer_ends_the_run() -> None:
    llm = ScriptedLLM([assistant("Paris", reasoning="I know this.")])
    trace = await run_agent("Capital of France?", llm=llm, model="m", tools=StaticToolSession(), config=FAST)
    assert trace.id.startswith("trace-") and len(trace.id) == 6 + 32
    assert trace.outcome.final_answer == "Paris" and trace.outcome.verdict == Verdict.UNSPECIFIED
    assert [m.role for m in trace.messages] == ["user", "assistant"]
    assert trace.messages[-1].reasoning_content == "I know this."
    assert trace.metadata.usage.prompt_tokens == 10 and trace.metadata.extra["stop_reason"] == "final_answer"
    assert [t.function.name for t in trace.tools] == ["browser_navigate", "browser_click"]
    _roundtrip(trace)


async def test_tool_calls_run_and_results_come_back_truncated() -> None:
    call = tool_call("browser_navigate", {"url": "http://x/"}, "call-1")
    llm = ScriptedLLM([assistant(None, tool_calls=[call], reasoning="Open it."), assistant("done")])
    tools = StaticToolSession(answers={"browser_navigate": "x" * 100})
    config = LoopOptions(result_char_limit=10, tools=("browser_navigate",))
    task = Task(suite="s", task_id="t", prompt="go")
    trace = await run_agent("go", llm=llm, model="m", tools=tools, config=config, task=task)
    assert tools.calls == [("browser_navigate", '{"url": "http://x/"}')]
    tool_message = trace.messages[2]
    assert tool_message.tool_call_id == "call-1" and tool_message.name == "browser_navigate"
    assert tool_message.content == "x" * 10 + "\n[... truncated 90 characters ...]"
    assert trace.metadata.truncation_limit == 10 and trace.task == task
    assert [t.function.name for t in trace.tools] == ["browser_navigate"]
    # the second request carries the assistant turn (reasoning sent back as `reasoning`) and the result
    sent = llm.requests[1]["messages"]
    assert sent[1]["reasoning"] == "Open it." and sent[2]["role"] == "tool"
    assert [t["function"]["name"] for t in llm.requests[0]["tools"]] == ["browser_navigate"]
    _roundtrip(trace)


async def test_task_reminder_ends_every_result_with_the_request_after_the_cut() -> None:
    calls = [tool_call("browser_navigate", {"url": "http://x/"}, "a"), tool_call("browser_click", {"ref": "e1"}, "b")]
    llm = ScriptedLLM([assistant(None, tool_calls=calls[:1]), assistant(None, tool_calls=calls[1:]), assistant("42")])
    tools = StaticToolSession(answers={"browser_navigate": "x" * 100})
    config = LoopOptions(result_char_limit=10, task_reminder=True, retry_backoff_s=0.001)
    trace = await run_agent("How much?", llm=llm, model="m", tools=tools, config=config, approver=lambda c: c.id == "a")
    results = [m.content for m in trace.messages if m.role == "tool"]
    assert results == [
        "x" * 10 + "\n[... truncated 90 characters ...]\n\nTask: How much?",
        f"{REJECTED_MESSAGE}\n\nTask: How much?",
    ]
    # what the model was sent is what the trace keeps
    assert [m["content"] for m in llm.requests[2]["messages"] if m["role"] == "tool"] == results
    assert trace.metadata.extra["task_reminder"] == "true"
    _roundtrip(trace)


def test_clip_result_keeps_text_the_gateway_already_cut() -> None:
    cut = "abc\n[... truncated 5 characters ...]"
    assert clip_result(cut, 3) == cut
    assert clip_result("abcdef", 0) == "abcdef"


async def test_unparsed_tool_call_is_recorded_and_retried() -> None:
    raw = '<tool_call>{"name": "browser_navigate", "arguments": {"url": </tool_call>'
    llm = ScriptedLLM([assistant(raw), assistant("answer")])
    trace = await run_agent("q", llm=llm, model="m", tools=StaticToolSession(), config=FAST)
    assert trace.metadata.parse_errors == [raw]
    assert trace.outcome.final_answer == "answer"
    assert llm.requests[0]["messages"] == llm.requests[1]["messages"]  # same messages, nothing appended
    assert [m.role for m in trace.messages] == ["user", "assistant"]


async def test_a_tool_call_that_never_parses_fails_the_run_instead_of_answering() -> None:
    # a comparison's checker would pass this text: it names an item first
    raw = '<tool_call>{"name": "browser_type", "arguments": {"text": "Red Robe": "x"}}</tool_call>'
    llm = ScriptedLLM([assistant(raw)] * 3)
    trace = await run_agent("q", llm=llm, model="m", tools=StaticToolSession(), config=FAST)
    assert len(llm.requests) == 3 and trace.metadata.parse_errors == [raw] * 3
    assert trace.outcome.verdict == Verdict.FAILED and trace.outcome.final_answer is None
    assert trace.outcome.detail == "the model wrote a tool call that does not parse (3 tries)"
    assert trace.metadata.extra["stop_reason"] == "unparsed_tool_call"
    _roundtrip(trace)


async def test_greedy_decoding_is_not_asked_again_for_a_call_that_did_not_parse() -> None:
    raw = '<tool_call>{"name": "browser_navigate", "arguments": {"url": </tool_call>'
    llm = ScriptedLLM([assistant(raw), assistant("never asked")])
    config = LoopOptions(retry_backoff_s=0.001, temperature=0.0)
    trace = await run_agent("q", llm=llm, model="m", tools=StaticToolSession(), config=config)
    assert len(llm.requests) == 1 and trace.metadata.parse_errors == [raw]
    assert trace.outcome.detail == "the model wrote a tool call that does not parse (1 try)"


async def test_unknown_tool_and_bad_arguments_come_back_as_errors() -> None:
    calls = [tool_call("no_such_tool", {}, "a"), tool_call("browser_click", "{not json", "b")]
    llm = ScriptedLLM([assistant(None, tool_calls=calls), assistant("gave up")])
    trace = await run_agent("q", llm=llm, model="m", tools=StaticToolSession(), config=FAST)
    results = [m.content for m in trace.messages if m.role == "tool"]
    assert results[0].startswith("### Error\nUnknown tool") and "not valid JSON" in results[1]
    assert trace.metadata.extra["invalid_tool_calls"] == "2"
    recorded = trace.messages[1].tool_calls[1].function.arguments
    assert json.loads(recorded) == {"_invalid_arguments": "{not json"}
    _roundtrip(trace)


async def test_a_call_whose_arguments_its_schema_rejects_counts_as_invalid() -> None:
    tools = StaticToolSession(("browser_type",))
    text = {"ref": {"type": "string"}, "text": {"type": "string"}}
    tools.tools[0]["function"]["parameters"] = {"type": "object", "properties": text, "required": ["ref", "text"]}
    calls = [
        tool_call("browser_type", {"ref": "e5"}, "a"),  # the required text left out
        tool_call("browser_type", {"ref": "e5", "text": 3}, "b"),  # a number for a string
        tool_call("browser_type", {"ref": "e5", "text": "teapot"}, "c"),
    ]
    llm = ScriptedLLM([assistant(None, tool_calls=calls), assistant("done")])
    trace = await run_agent("q", llm=llm, model="m", tools=tools, config=FAST)
    assert trace.metadata.extra["tool_calls"] == "3" and trace.metadata.extra["invalid_tool_calls"] == "2"
    assert len(tools.calls) == 3  # every call still goes to the session: its error is what the model reads
    _roundtrip(trace)


async def test_max_steps_stops_a_model_that_never_answers() -> None:
    llm = ScriptedLLM([assistant(None, tool_calls=[tool_call("browser_click", {})])], repeat_last=True)
    trace = await run_agent("q", llm=llm, model="m", tools=StaticToolSession(), config=LoopOptions(max_steps=3))
    assert len(llm.requests) == 3
    assert trace.outcome.verdict == Verdict.FAILED and "max_steps (3)" in trace.outcome.detail
    assert trace.metadata.extra["steps"] == "3"
    _roundtrip(trace)


async def test_repeat_limit_ends_a_run_that_makes_the_same_call_for_the_same_result() -> None:
    same = assistant(None, tool_calls=[tool_call("browser_click", {"ref": "e5"})])
    llm = ScriptedLLM([same], repeat_last=True)
    config = LoopOptions(max_steps=8, repeat_limit=3)
    trace = await run_agent("q", llm=llm, model="m", tools=StaticToolSession(), config=config)
    assert len(llm.requests) == 3 and trace.metadata.extra["stop_reason"] == "repeated_call"
    assert trace.outcome.verdict == Verdict.FAILED
    assert trace.outcome.detail == "browser_click returned the same result 3 times in a row for the same arguments"
    _roundtrip(trace)


async def test_repeat_limit_counts_only_unbroken_runs_of_one_call() -> None:
    def click(ref: str):  # type: ignore[no-untyped-def]
        return assistant(None, tool_calls=[tool_call("browser_click", {"ref": ref})])

    # e5 twice, e6, e5 twice, then an answer: never three of one in a row
    llm = ScriptedLLM([click("e5"), click("e5"), click("e6"), click("e5"), click("e5"), assistant("Done.")])
    config = LoopOptions(max_steps=8, repeat_limit=3)
    trace = await run_agent("q", llm=llm, model="m", tools=StaticToolSession(), config=config)
    assert trace.metadata.extra["stop_reason"] == "final_answer" and trace.outcome.final_answer == "Done."


async def test_time_limit_ends_a_hanging_model() -> None:
    async def hang(request):
        await asyncio.Event().wait()

    llm = ScriptedLLM([hang])
    trace = await asyncio.wait_for(
        run_agent("q", llm=llm, model="m", tools=StaticToolSession(), config=LoopOptions(time_limit_s=0.2)),
        timeout=5,
    )
    assert trace.outcome.verdict == Verdict.FAILED and "time limit" in trace.outcome.detail
    assert trace.metadata.extra["stop_reason"] == "time_limit"


async def test_inference_down_retries_then_ends_with_error_keeping_the_trace() -> None:
    config = LoopOptions(inference_attempts=3, retry_backoff_s=0.01)
    async with openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0) as down:
        trace = await run_agent("q", llm=down, model="m", tools=StaticToolSession(), config=config)
    assert trace.outcome.verdict == Verdict.ERROR
    assert "after 3 attempts" in trace.outcome.detail
    assert trace.messages[0].content == "q"
    _roundtrip(trace)


async def test_5xx_is_retried_and_then_succeeds() -> None:
    import httpx

    request = httpx.Request("POST", "http://x/v1/chat/completions")
    error = openai.InternalServerError("boom", response=httpx.Response(503, request=request), body=None)
    llm = ScriptedLLM([error, assistant("fine")])
    trace = await run_agent("q", llm=llm, model="m", tools=StaticToolSession(), config=FAST)
    assert trace.outcome.final_answer == "fine" and len(llm.requests) == 2


async def test_rejected_call_tells_the_model() -> None:
    call = tool_call("browser_navigate", {"url": "http://x/"})
    llm = ScriptedLLM([assistant(None, tool_calls=[call]), assistant("ok")])
    tools = StaticToolSession()
    seen = []

    async def approver(proposed):
        seen.append(proposed.function.name)
        return False

    trace = await run_agent("q", llm=llm, model="m", tools=tools, config=FAST, approver=approver)
    assert seen == ["browser_navigate"] and tools.calls == []
    assert trace.messages[2].content == REJECTED_MESSAGE
    assert trace.metadata.rejected_tool_calls == 1


async def test_lost_session_is_reopened_once_then_fails_cleanly() -> None:
    call = tool_call("browser_click", {})
    llm = ScriptedLLM([assistant(None, tool_calls=[call])], repeat_last=True)
    tools = StaticToolSession()
    tools.lose_at = {0, 1}
    trace = await run_agent("q", llm=llm, model="m", tools=tools, config=FAST)
    assert tools.reopened == 1
    assert "browser session was lost" in trace.messages[2].content
    assert trace.outcome.verdict == Verdict.ERROR and "tool session failed" in trace.outcome.detail
    _roundtrip(trace)


@pytest.mark.parametrize("strip", [False, True])
async def test_guidance_recorded_or_stripped(strip: bool) -> None:
    llm = ScriptedLLM([assistant("a")])
    config = LoopOptions(guidance_prompt="Be brief.", strip_guidance=strip)
    trace = await run_agent("q", llm=llm, model="m", tools=StaticToolSession(), config=config)
    assert llm.requests[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert [m.role for m in trace.messages] == (["user", "assistant"] if strip else ["system", "user", "assistant"])
    assert trace.metadata.guidance_prompt == "Be brief." and trace.metadata.guidance_stripped is strip


async def test_events_are_streamed_in_order() -> None:
    llm = ScriptedLLM([assistant(None, tool_calls=[tool_call("browser_click", {})]), assistant("a")])
    events = []
    await run_agent("q", llm=llm, model="m", tools=StaticToolSession(), config=FAST, on_event=events.append)
    assert [(e.step, e.kind) for e in events] == [(1, "assistant"), (1, "tool_result"), (2, "assistant")]


async def test_content_before_a_call_goes_back_as_written_and_the_trace_keeps_it_as_returned() -> None:
    # vLLM's hermes parser leaves the newline before <tool_call> in content; the template adds its own
    call = tool_call("browser_navigate", {"url": "http://x/"}, "call-1")
    llm = ScriptedLLM([assistant("Opening it.\n", tool_calls=[call]), assistant("done")])
    trace = await run_agent("go", llm=llm, model="m", tools=StaticToolSession(), config=FAST)
    assert trace.messages[1].content == "Opening it.\n"  # as the API returned it
    assert llm.requests[1]["messages"][1]["content"] == "Opening it."  # rendered as the model wrote it
    _roundtrip(trace)
