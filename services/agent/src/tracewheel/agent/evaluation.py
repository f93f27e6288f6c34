"""Evaluation: run a suite (agent or reference replay), check every task, sum up the figures.

The result is `tracewheel.core.evaluation.EvalResult`: one `TaskResult` per task, read from its
checked trace here, and the figures derived from them there (their definitions are in that
module's docstring). A valid tool call names a tool of the session with a JSON-object argument
that the tool's parameter schema (as offered to the model) accepts; the right tool is one the
task's reference solution uses.

A suite's `reset_url` (the shop's: clear its orders) is POSTed once at the start of a run, not
per task: tasks run concurrently, and the shop never has two form tasks on the same product, so
their orders cannot be mistaken. Each task is checked before its tool session closes, so an
end-state check reads the page the run ended on.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

import openai

from tracewheel.agent.checking import core_task, judge, reset_site, reset_suite
from tracewheel.agent.conversation import LoopOptions, new_trace_id
from tracewheel.agent.loop import run_agent
from tracewheel.agent.replay import replay_task
from tracewheel.agent.suites.checks import InferenceEndpoint
from tracewheel.agent.task_session import final_page, open_task_session
from tracewheel.agent.tasks import Task
from tracewheel.agent.tools import ToolSessionFactory
from tracewheel.core.errors import TracewheelError
from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.core.trace import Message, Outcome, Trace, Verdict

logger = logging.getLogger(__name__)

Mode = Literal["agent", "replay"]
TraceSink = Callable[[Trace], Awaitable[None]]
ProgressSink = Callable[[int, int, TaskResult | None], Awaitable[None]]
"""Told `(tasks finished, tasks in all, the result just finished)`: once at the start (no result
yet), then as each task finishes."""


def task_result(task: Task, trace: Trace, latency_s: float) -> TaskResult:
    """A task's figures from its checked trace."""
    calls = [call for message in trace.messages for call in message.tool_calls]
    extra = trace.metadata.extra
    invalid = int(extra.get("invalid_tool_calls", "0"))
    reference_tools = {step.tool for step in task.reference}
    outcome = trace.outcome or Outcome()
    usage = trace.metadata.usage
    return TaskResult(
        task_id=task.task_id,
        template=task.template,
        passed=outcome.verdict == Verdict.PASSED,
        verdict=outcome.verdict.value,
        detail=outcome.detail,
        steps=int(extra.get("steps", "0")),
        tool_calls=len(calls),
        attempted_calls=len(calls) + len(trace.metadata.parse_errors),
        valid_tool_calls=len(calls) - invalid,
        right_tool_calls=sum(call.function.name in reference_tools for call in calls),
        tokens=usage.prompt_tokens + usage.completion_tokens,
        latency_s=latency_s,
        trace_id=trace.id,
    )


def _failed_trace(task: Task, model: str, error: Exception) -> Trace:
    outcome = Outcome(verdict=Verdict.ERROR, detail=f"{type(error).__name__}: {error}")
    messages = [Message(role="user", content=task.prompt)]
    return Trace(id=new_trace_id(), model=model, messages=messages, task=core_task(task), outcome=outcome)


async def _run_one(
    task: Task,
    *,
    factory: ToolSessionFactory,
    llm: openai.AsyncOpenAI | None,
    model: str,
    config: LoopOptions,
    mode: Mode,
    inference: InferenceEndpoint | None,
) -> Trace:
    """Runs (or replays) the task in a session of its own and checks it before the session closes."""
    tools, config = await open_task_session(factory, task, config)
    try:
        if mode == "replay":
            trace = await replay_task(task, tools, config=config, model=model)
        elif llm is None:
            raise ValueError("agent mode needs an llm client")
        else:
            trace = await run_agent(task.prompt, llm=llm, model=model, tools=tools, config=config, task=core_task(task))
        page = await final_page(task, tools)
    finally:
        await tools.close()
    outcome = await judge(task, trace.outcome or Outcome(), page=page, messages=trace.messages, inference=inference)
    return trace.model_copy(update={"outcome": outcome})


async def _run_timed(
    task: Task,
    *,
    factory: ToolSessionFactory,
    llm: openai.AsyncOpenAI | None,
    model: str,
    config: LoopOptions,
    mode: Mode,
    inference: InferenceEndpoint | None,
) -> tuple[Trace, float]:
    """The task's checked trace (an error trace when it could not run) and the seconds it took."""
    started = time.perf_counter()
    try:
        trace = await _run_one(
            task, factory=factory, llm=llm, model=model, config=config, mode=mode, inference=inference
        )
    except TracewheelError as exc:  # a session that could not open, a replay whose target is gone
        logger.warning("task %s failed to run: %s", task.task_id, exc)
        trace = _failed_trace(task, model, exc)
    return trace, time.perf_counter() - started


async def _run_all(
    tasks: Sequence[Task],
    run: Callable[[Task], Awaitable[tuple[Trace, float]]],
    concurrency: int,
    on_trace: TraceSink | None,
    on_progress: ProgressSink | None,
) -> list[TaskResult]:
    """Runs every task (`concurrency` at once), telling `on_trace` and `on_progress` as each finishes."""
    limit = asyncio.Semaphore(concurrency)
    finished: list[TaskResult] = []
    if on_progress is not None:
        await on_progress(0, len(tasks), None)

    async def one(task: Task) -> TaskResult:
        async with limit:
            trace, latency = await run(task)
            if on_trace is not None:
                await on_trace(trace)
            finished.append(task_result(task, trace, latency))
            if on_progress is not None:
                await on_progress(len(finished), len(tasks), finished[-1])
            return finished[-1]

    return await asyncio.gather(*(one(task) for task in tasks))


async def evaluate(
    tasks: Sequence[Task],
    *,
    factory: ToolSessionFactory,
    model: str,
    site_url: str | None = None,
    reset_url: str | None = None,
    suite: str = "",
    llm: openai.AsyncOpenAI | None = None,
    config: LoopOptions | None = None,
    concurrency: int = 2,
    mode: Mode = "agent",
    inference: InferenceEndpoint | None = None,
    on_trace: TraceSink | None = None,
    on_progress: ProgressSink | None = None,
) -> EvalResult:
    """Runs `tasks` (`concurrency` at once, one tool session each), checks them, and reports.

    Args:
        tasks: the suite's tasks.
        factory: opens one tool session per task.
        model: the model (or adapter) name sent to inference; recorded in traces.
        site_url: the shop's site, whose orders are reset first (the shop's `reset_url`).
        reset_url: POSTed once first (a suite's `reset_url`).
        suite: the name the result is recorded under (default: the first task's suite).
        llm: OpenAI client on the inference server (agent mode).
        config: agent limits, tools and guidance.
        concurrency: tasks at once.
        mode: `agent` runs the model; `replay` replays the reference solutions (demonstrations).
        inference: the agent's inference server, where judges without a base_url are asked.
        on_trace: given every checked trace (publish it, write it).
        on_progress: told as tasks finish (a client's progress bar).

    Raises:
        httpx.HTTPError: the reset URL did not answer.
    """
    config = config or LoopOptions()
    if site_url is not None:
        await reset_site(site_url)
    if reset_url is not None:
        await reset_suite(reset_url)
    run = functools.partial(
        _run_timed, factory=factory, llm=llm, model=model, config=config, mode=mode, inference=inference
    )
    results = await _run_all(tasks, run, concurrency, on_trace, on_progress)
    suite = suite or (tasks[0].suite if tasks else "")
    report = EvalResult(model=model, suite=suite, task_results=results)
    logger.info("evaluated %s on %s: success %.2f over %d tasks", model, suite, report.success_rate, report.tasks)
    return report
