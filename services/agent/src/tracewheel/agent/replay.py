"""Demonstration traces: a task's reference solution replayed through a real tool session.

Each reference Step becomes one assistant turn (its one-line reasoning as `reasoning_content`,
one tool call with a `chatcmpl-tool-<hex>` id) and the tool's real result; refs are resolved
against the ARIA snapshot in the previous result, or, when that result shows only what changed
on the same page (the gateway's incremental snapshots), in the last whole snapshot of that page;
a `browser_snapshot` turn is inserted when there is none, or when the target is not in either.
The last turn answers with the task's answer.
The result is the same shape as an agent run, so it trains and evaluates like one.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from tracewheel.agent.checking import core_task, judge
from tracewheel.agent.conversation import (
    LoopOptions,
    clip_result,
    new_trace_id,
    offered_tools_of,
    trace_metadata,
    with_reminder,
)
from tracewheel.agent.task_session import final_page
from tracewheel.agent.tasks import RefNotFound, Step, Task
from tracewheel.agent.tools import ToolSession
from tracewheel.core.errors import FailedPrecondition
from tracewheel.core.trace import Message, Outcome, Tool, ToolCall, Trace

SNAPSHOT_TOOL = "browser_snapshot"
SNAPSHOT_REASONING = "I need a fresh snapshot of the page to find the element's ref."
_WHOLE_SNAPSHOT = "- Page Snapshot:\n"
_PAGE_URL = re.compile(r"^- Page URL: (\S+)$", re.MULTILINE)


def _page_url(text: str | None) -> str | None:
    match = _PAGE_URL.search(text or "")
    return match.group(1) if match else None


class _Demo:
    def __init__(self, tools: ToolSession, config: LoopOptions, prompt: str) -> None:
        self.tools = tools
        self.config = config
        self.prompt = prompt
        self.messages: list[Message] = []
        self.last_text: str | None = None
        self.page_text: str | None = None
        """The last result with a whole page snapshot; incremental results say only what changed in it."""
        self.arguments: dict[str, set[str]] = {}
        """Offered tools and their offered arguments: a demonstration uses no others."""
        self.tool_errors = 0

    def offer(self, tools: list[dict[str, Any]]) -> None:
        for tool in tools:
            properties = (tool["function"].get("parameters") or {}).get("properties") or {}
            self.arguments[tool["function"]["name"]] = set(properties)

    async def call(self, tool: str, arguments: dict[str, Any], reasoning: str) -> None:
        unoffered = sorted(set(arguments) - self.arguments.get(tool, set()))
        if tool not in self.arguments or unoffered:
            what = f"{tool} arguments {', '.join(unoffered)}" if tool in self.arguments else tool
            raise FailedPrecondition(f"the reference solution uses {what}, which the model is not offered")
        call = ToolCall(
            id=f"chatcmpl-tool-{uuid.uuid4().hex}", function={"name": tool, "arguments": json.dumps(arguments)}
        )
        self.messages.append(Message(role="assistant", reasoning_content=reasoning, tool_calls=[call]))
        output = await self.tools.call_tool(tool, call.function.arguments)
        self.tool_errors += output.is_error
        self.last_text = output.text
        if _WHOLE_SNAPSHOT in output.text:
            self.page_text = output.text
        text = with_reminder(clip_result(output.text, self.config.result_char_limit), self.prompt, self.config)
        self.messages.append(Message(role="tool", tool_call_id=call.id, name=tool, content=text))

    async def snapshot(self) -> None:
        if SNAPSHOT_TOOL not in self.arguments:
            raise FailedPrecondition(f"the replay needs {SNAPSHOT_TOOL} in the session's tools")
        await self.call(SNAPSHOT_TOOL, {}, SNAPSHOT_REASONING)

    def _resolved(self, step: Step) -> dict[str, Any] | None:
        """The step's arguments resolved in the last result, else in the last whole snapshot of the
        same page (the last result showed only what changed); None: in neither."""
        texts = [self.last_text]
        if self.page_text is not self.last_text and _page_url(self.page_text) == _page_url(self.last_text):
            texts.append(self.page_text)
        for text in texts:
            if text is not None and "[ref=" in text:
                try:
                    return step.call_arguments(text)
                except RefNotFound:
                    continue
        return None

    async def step(self, step: Step) -> None:
        arguments = self._resolved(step) if step.targeted else step.call_arguments()
        if arguments is None:
            await self.snapshot()
            arguments = step.call_arguments(self.last_text)
        await self.call(step.tool, arguments, step.reasoning)


async def replay_task(
    task: Task,
    tools: ToolSession,
    *,
    config: LoopOptions | None = None,
    site_url: str | None = None,
    model: str = "reference",
    check: bool = False,
) -> Trace:
    """Replays `task.reference` in `tools` and returns the demonstration trace.

    Args:
        task: a suite task with a reference solution.
        tools: a fresh session on the task site (not closed here).
        config: guidance prompt, result truncation and tool subset, as for agent runs.
        site_url: when given, the outcome is checked (as `check`; kept for the shop's callers).
        model: the trace's model name.
        check: check the outcome with the task's checker (end-state checks read the final page).

    Raises:
        RefNotFound: a step's target is not on the page (the site and suite disagree).
        FailedPrecondition: a snapshot is needed but the session has no browser_snapshot.
    """
    config = config or LoopOptions()
    started = time.perf_counter()
    demo = _Demo(tools, config, task.prompt)
    session_tools = offered_tools_of(await tools.list_tools(), config)
    demo.offer(session_tools)
    if config.guidance_prompt and not config.strip_guidance:
        demo.messages.append(Message(role="system", content=config.guidance_prompt))
    demo.messages.append(Message(role="user", content=task.prompt))
    for step in task.reference:
        await demo.step(step)
    reasoning = task.answer_reasoning or f"The task is done; the answer is {task.answer}."
    demo.messages.append(Message(role="assistant", content=task.answer, reasoning_content=reasoning))
    outcome = Outcome(final_answer=task.answer)
    if check or site_url is not None:
        outcome = await judge(task, outcome, page=await final_page(task, tools), messages=demo.messages)
    return _demo_trace(task, demo, session_tools, outcome, model, time.perf_counter() - started)


def _demo_trace(
    task: Task, demo: _Demo, session_tools: list[dict[str, Any]], outcome: Outcome, model: str, total_s: float
) -> Trace:
    return Trace(
        id=new_trace_id(),
        model=model,
        tools=[Tool.model_validate(t) for t in session_tools],
        messages=demo.messages,
        task=core_task(task),
        outcome=outcome,
        metadata=trace_metadata(
            demo.config,
            timings_s={"total": total_s},
            source="replay",
            extra={
                "stop_reason": "final_answer",
                "steps": str(sum(m.role == "assistant" for m in demo.messages)),
                "tool_calls": str(sum(len(m.tool_calls) for m in demo.messages)),
                "invalid_tool_calls": "0",
                "tool_errors": str(demo.tool_errors),
            },
        ),
    )
