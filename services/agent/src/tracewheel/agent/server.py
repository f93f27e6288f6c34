"""gRPC servicer of tracewheel.v1.Agent: translation only, the work is AgentRunner's."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import grpc

from tracewheel.agent.eval_traces import find_eval_trace
from tracewheel.agent.evaluation import ProgressSink
from tracewheel.agent.loop import AgentEvent
from tracewheel.agent.runner import AgentRunner
from tracewheel.agent.suites.checks import checks_of
from tracewheel.agent.suites.suite import Suite
from tracewheel.agent.tasks import Task
from tracewheel.core.errors import InvalidArgument
from tracewheel.core.evaluation import TaskResult
from tracewheel.core.evaluation_proto import eval_result_to_proto
from tracewheel.core.trace import ToolCall, Trace

# The one Message converter lives in core; it is not public there yet.
from tracewheel.core.trace_proto import message_to_proto, trace_to_proto
from tracewheel.v1 import agent_pb2, agent_pb2_grpc, evaluation_pb2, trace_pb2

logger = logging.getLogger(__name__)

_DONE = object()


def _step_event(event: AgentEvent) -> agent_pb2.StepEvent:
    message = message_to_proto(event.message)
    if event.kind == "assistant":
        return agent_pb2.StepEvent(step=event.step, assistant=message)
    return agent_pb2.StepEvent(step=event.step, tool_result=message)


def _tool_call_proto(call: ToolCall) -> trace_pb2.ToolCall:
    function = trace_pb2.FunctionCall(name=call.function.name, arguments=call.function.arguments)
    return trace_pb2.ToolCall(id=call.id, type=call.type, function=function)


def _run_kwargs(request: agent_pb2.RunTaskRequest) -> dict[str, Any]:
    return {
        "prompt": request.prompt,
        "suite": request.suite,
        "task_id": request.task_id,
        "model": request.model,
        "max_steps": request.max_steps,
        "time_limit_s": request.time_limit_s,
    }


async def _stream(work: Coroutine[Any, Any, Any], queue: asyncio.Queue[Any]) -> AsyncIterator[Any]:
    """Yields what `work` puts on `queue` as it comes, then its result; cancels it if the client goes."""
    task = asyncio.create_task(work)
    task.add_done_callback(lambda _: queue.put_nowait(_DONE))
    try:
        while (item := await queue.get()) is not _DONE:
            yield item
        result = await task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    yield result


async def _stream_run(
    run: Callable[[Callable[[AgentEvent], Awaitable[None]]], Coroutine[Any, Any, Trace]], queue: asyncio.Queue[Any]
) -> AsyncIterator[agent_pb2.StepEvent]:
    """Yields the run's events as they come, then the finished trace; cancels the run if the client goes."""

    async def on_event(event: AgentEvent) -> None:
        await queue.put(_step_event(event))

    last_step = 0
    async for item in _stream(run(on_event), queue):
        if isinstance(item, Trace):
            yield agent_pb2.StepEvent(step=last_step, finished=trace_to_proto(item))
        else:
            last_step = item.step
            yield item


class AgentServicer(agent_pb2_grpc.AgentServicer):
    """Translates tracewheel.v1.Agent calls to AgentRunner.

    Args:
        eval_trace_dir: where evaluation traces are written (`EvalTraceFiles`); None: none are read.
    """

    def __init__(self, runner: AgentRunner, eval_trace_dir: Path | None = None) -> None:
        self.runner = runner
        self.eval_trace_dir = eval_trace_dir

    async def RunTask(self, request: agent_pb2.RunTaskRequest, context: grpc.aio.ServicerContext) -> Any:
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def run(on_event: Callable[[AgentEvent], Awaitable[None]]) -> Trace:
            return await self.runner.run_task(**_run_kwargs(request), on_event=on_event)

        async for event in _stream_run(run, queue):
            yield event

    async def RunTaskWithApproval(
        self, request_iterator: AsyncIterator[agent_pb2.ApprovalMessage], context: grpc.aio.ServicerContext
    ) -> Any:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("kind") != "start":
            raise InvalidArgument("the first ApprovalMessage must be `start` with the task to run")
        queue: asyncio.Queue[Any] = asyncio.Queue()
        pending: dict[str, asyncio.Future[bool]] = {}
        reader = asyncio.create_task(_read_decisions(request_iterator, pending))

        async def approver(call: ToolCall) -> bool:
            decision = asyncio.get_running_loop().create_future()
            pending[call.id] = decision
            await queue.put(agent_pb2.StepEvent(approval_needed=_tool_call_proto(call)))
            if reader.done():  # the client stopped sending: nothing will be approved
                return False
            return await decision

        async def run(on_event: Callable[[AgentEvent], Awaitable[None]]) -> Trace:
            return await self.runner.run_task(**_run_kwargs(first.start), approver=approver, on_event=on_event)

        try:
            async for event in _stream_run(run, queue):
                yield event
        finally:
            reader.cancel()

    async def _suite(
        self, request: agent_pb2.SuiteRequest, on_progress: ProgressSink | None = None
    ) -> agent_pb2.RunSuiteResponse:
        """Runs the evaluation, suite run or demonstrations `request` names.

        Raises:
            InvalidArgument: it names none.
        """
        kind = request.WhichOneof("kind")
        if kind == "evaluate":
            asked = request.evaluate
            report = await self.runner.evaluate(
                asked.model, asked.suite, concurrency=asked.concurrency, use_cache=asked.use_cache,
                on_progress=on_progress,
            )  # fmt: skip
        elif kind == "run_suite":
            ran = request.run_suite
            report = await self.runner.run_suite(
                ran.suite, model=ran.model, concurrency=ran.concurrency, publish=ran.publish_traces,
                first_task=ran.tasks.first_task, task_count=ran.tasks.task_count, on_progress=on_progress,
            )  # fmt: skip
        elif kind == "demonstrations":
            demos = request.demonstrations
            report = await self.runner.collect_demonstrations(
                demos.suite, concurrency=demos.concurrency, first_task=demos.tasks.first_task,
                task_count=demos.tasks.task_count, on_progress=on_progress,
            )  # fmt: skip
        else:
            raise InvalidArgument("SuiteRequest: set one of evaluate, run_suite or demonstrations")
        return agent_pb2.RunSuiteResponse(metrics=eval_result_to_proto(report), trace_ids=report.trace_ids)

    async def RunSuite(
        self, request: agent_pb2.RunSuiteRequest, context: grpc.aio.ServicerContext
    ) -> agent_pb2.RunSuiteResponse:
        return await self._suite(agent_pb2.SuiteRequest(run_suite=request))

    async def Evaluate(
        self, request: agent_pb2.EvaluateRequest, context: grpc.aio.ServicerContext
    ) -> evaluation_pb2.EvalResult:
        return (await self._suite(agent_pb2.SuiteRequest(evaluate=request))).metrics

    async def CollectDemonstrations(
        self, request: agent_pb2.CollectDemonstrationsRequest, context: grpc.aio.ServicerContext
    ) -> agent_pb2.RunSuiteResponse:
        return await self._suite(agent_pb2.SuiteRequest(demonstrations=request))

    async def StreamSuite(self, request: agent_pb2.SuiteRequest, context: grpc.aio.ServicerContext) -> Any:
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def on_progress(done: int, total: int, result: TaskResult | None) -> None:
            task_id, passed = (result.task_id, result.passed) if result else ("", False)
            await queue.put(agent_pb2.SuiteProgress(tasks_done=done, tasks_total=total, task_id=task_id, passed=passed))

        async for item in _stream(self._suite(request, on_progress), queue):
            yield item if isinstance(item, agent_pb2.SuiteProgress) else agent_pb2.SuiteProgress(result=item)

    async def AddSuite(self, request: agent_pb2.AddSuiteRequest, context: grpc.aio.ServicerContext) -> Any:
        suite = self.runner.add_suite(request.content, request.filename, replace=request.replace)
        return _suite_info(suite, with_tasks=True)

    async def ListSuites(self, request: agent_pb2.ListSuitesRequest, context: grpc.aio.ServicerContext) -> Any:
        suites = []
        for entry in self.runner.list_suites():
            if entry.suite is None:
                suites.append(agent_pb2.SuiteInfo(name=entry.name, source=entry.source, error=entry.error))
            else:
                suites.append(_suite_info(entry.suite, with_tasks=False))
        return agent_pb2.ListSuitesResponse(suites=suites)

    async def GetSuite(self, request: agent_pb2.GetSuiteRequest, context: grpc.aio.ServicerContext) -> Any:
        suite = self.runner.get_suite(request.name)
        info = _suite_info(suite, with_tasks=True)
        if suite.source != "bundled":
            info.content = await asyncio.to_thread(Path(suite.source).read_text, encoding="utf-8")
        return info

    async def GetEvalTrace(self, request: agent_pb2.GetEvalTraceRequest, context: grpc.aio.ServicerContext) -> Any:
        trace = await asyncio.to_thread(find_eval_trace, self.eval_trace_dir, request.trace_id)
        return trace_to_proto(trace)


def _check_kinds(tasks: list[Task]) -> list[str]:
    return sorted({check.kind for task in tasks if task.check for check in checks_of(task.check)})


def _suite_info(suite: Suite, *, with_tasks: bool) -> agent_pb2.SuiteInfo:
    info = agent_pb2.SuiteInfo(
        name=suite.name,
        description=suite.description,
        source=suite.source,
        train_tasks=suite.split_sizes["train"],
        heldout_tasks=suite.split_sizes["heldout"],
        check_kinds=_check_kinds(list(suite.tasks)),
    )
    if with_tasks:
        for task in suite.tasks:
            info.tasks.add(
                task_id=task.task_id, split=task.split, prompt=task.prompt, check_kinds=_check_kinds([task]),
                has_reference=task.has_reference, group=task.template,
            )  # fmt: skip
    return info


async def _read_decisions(
    request_iterator: AsyncIterator[agent_pb2.ApprovalMessage], pending: dict[str, asyncio.Future[bool]]
) -> None:
    """Resolves pending approvals from the client's decisions; rejects what is left when it stops."""
    try:
        async for message in request_iterator:
            if message.WhichOneof("kind") != "decision":
                continue
            decision = pending.pop(message.decision.tool_call_id, None)
            if decision is not None and not decision.done():
                decision.set_result(message.decision.approved)
    finally:
        for decision in pending.values():
            if not decision.done():
                decision.set_result(False)
        pending.clear()
