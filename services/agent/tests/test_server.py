"""The Agent gRPC service over a real channel: a scripted model, instant tools."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.events import EvalTraceFiles
from tracewheel.agent.loop import REJECTED_MESSAGE
from tracewheel.agent.runner import AgentRunner
from tracewheel.agent.server import AgentServicer
from tracewheel.agent.testing import ScriptedLLM, StaticToolSession, assistant, tool_call
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.core.trace import Trace
from tracewheel.core.trelis import read_trelis_file
from tracewheel.v1 import agent_pb2, agent_pb2_grpc


class _Factory:
    async def open(self, tool_names=None, result_char_limit=0):
        return StaticToolSession()


async def _serve(runner: AgentRunner) -> tuple[GrpcServer, grpc.aio.Channel]:
    server = GrpcServer(["tracewheel.v1.Agent"])
    port = server.bind("127.0.0.1", 0)
    agent_pb2_grpc.add_AgentServicer_to_server(AgentServicer(runner), server.server)
    await server.start()
    return server, grpc.aio.insecure_channel(f"127.0.0.1:{port}")


def _runner(
    llm: ScriptedLLM,
    site_url: str = "http://127.0.0.1:9",
    published: list | None = None,
    eval_traces: Path | None = None,
) -> AgentRunner:
    async def keep(trace: Trace) -> None:
        if published is not None:
            published.append(trace)

    return AgentRunner(
        llm=llm,
        factory=_Factory(),
        config=LoopOptions(),
        default_model="agent",
        site_url=site_url,
        on_trace=keep,
        on_eval_trace=None if eval_traces is None else EvalTraceFiles(eval_traces),
    )


@pytest.fixture
async def scripted_call() -> AsyncIterator[ScriptedLLM]:
    yield ScriptedLLM([assistant(None, tool_calls=[tool_call("browser_click", {}, "c1")]), assistant("done")])


async def test_run_task_streams_steps_then_the_trace(scripted_call: ScriptedLLM) -> None:
    published: list[Trace] = []
    server, channel = await _serve(_runner(scripted_call, published=published))
    try:
        stub = agent_pb2_grpc.AgentStub(channel)
        events = [e async for e in stub.RunTask(agent_pb2.RunTaskRequest(prompt="click it"))]
    finally:
        await channel.close()
        await server.stop(0)
    kinds = [e.WhichOneof("kind") for e in events]
    assert kinds == ["assistant", "tool_result", "assistant", "finished"]
    assert events[1].tool_result.content == "ok" and events[-1].finished.outcome.final_answer == "done"
    assert [t.id for t in published] == [events[-1].finished.id]
    assert scripted_call.requests[0]["model"] == "agent"


async def test_run_task_without_prompt_or_task_is_invalid() -> None:
    server, channel = await _serve(_runner(ScriptedLLM([])))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            [e async for e in agent_pb2_grpc.AgentStub(channel).RunTask(agent_pb2.RunTaskRequest())]
    finally:
        await channel.close()
        await server.stop(0)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_approval_stream_rejects_a_call(scripted_call: ScriptedLLM) -> None:
    server, channel = await _serve(_runner(scripted_call))
    try:
        call = agent_pb2_grpc.AgentStub(channel).RunTaskWithApproval()
        await call.write(agent_pb2.ApprovalMessage(start=agent_pb2.RunTaskRequest(prompt="click it")))
        events = []
        async for event in call:
            events.append(event)
            if event.WhichOneof("kind") == "approval_needed":
                decision = agent_pb2.ApprovalDecision(tool_call_id=event.approval_needed.id, approved=False)
                await call.write(agent_pb2.ApprovalMessage(decision=decision))
    finally:
        await channel.close()
        await server.stop(0)
    kinds = [e.WhichOneof("kind") for e in events]
    assert kinds == ["assistant", "approval_needed", "tool_result", "assistant", "finished"]
    assert events[1].approval_needed.id == "c1" and events[2].tool_result.content == REJECTED_MESSAGE
    assert events[-1].finished.metadata.rejected_tool_calls == 1


async def test_run_suite_and_evaluate_report_metrics(site_url: str, tmp_path: Path) -> None:
    published: list[Trace] = []
    llm = ScriptedLLM([assistant("no idea")], repeat_last=True)
    server, channel = await _serve(_runner(llm, site_url, published, tmp_path))
    try:
        stub = agent_pb2_grpc.AgentStub(channel)
        metrics = await stub.Evaluate(agent_pb2.EvaluateRequest(model="candidate", suite="heldout", concurrency=4))
        assert published == []  # held-out runs are never published, only kept as files to read
        kept = [read_trelis_file(p) for p in sorted((tmp_path / "candidate" / "heldout").glob("*.json"))]
        assert len(kept) == 20 and all(t.outcome.final_answer == "no idea" and t.model == "candidate" for t in kept)
        suite = await stub.RunSuite(agent_pb2.RunSuiteRequest(suite="train", publish_traces=True))
    finally:
        await channel.close()
        await server.stop(0)
    assert metrics.model == "candidate" and metrics.tasks == 20 and metrics.success_rate == 0.0
    assert suite.metrics.tasks == 40 and sorted(suite.trace_ids) == sorted(t.id for t in published)
    assert [p.name for p in tmp_path.iterdir()] == ["candidate"]  # a published suite run is not written there


async def test_suite_runs_take_a_slice_and_refuse_one_outside_the_suite(site_url: str) -> None:
    published: list[Trace] = []
    llm = ScriptedLLM([assistant("no idea")], repeat_last=True)
    server, channel = await _serve(_runner(llm, site_url, published))
    try:
        stub = agent_pb2_grpc.AgentStub(channel)
        tail = agent_pb2.TaskSlice(first_task=35)
        suite = await stub.RunSuite(agent_pb2.RunSuiteRequest(suite="train", publish_traces=True, tasks=tail))
        outside = agent_pb2.TaskSlice(first_task=40)
        with pytest.raises(grpc.aio.AioRpcError) as run_error:
            await stub.RunSuite(agent_pb2.RunSuiteRequest(suite="train", tasks=outside))
        with pytest.raises(grpc.aio.AioRpcError) as demo_error:
            await stub.CollectDemonstrations(agent_pb2.CollectDemonstrationsRequest(tasks=outside))
    finally:
        await channel.close()
        await server.stop(0)
    assert suite.metrics.tasks == 5
    assert sorted(t.task.task_id[:9] for t in published) == [f"train-{i:03d}" for i in range(35, 40)]
    for caught in (run_error, demo_error):
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "past the end of a suite of 40 tasks" in caught.value.details()


async def test_stream_suite_reports_each_task_then_the_result(site_url: str) -> None:
    llm = ScriptedLLM([assistant("no idea")], repeat_last=True)
    server, channel = await _serve(_runner(llm, site_url))
    try:
        tail = agent_pb2.RunSuiteRequest(suite="train", tasks=agent_pb2.TaskSlice(first_task=35))
        stream = agent_pb2_grpc.AgentStub(channel).StreamSuite(agent_pb2.SuiteRequest(run_suite=tail))
        messages = [message async for message in stream]
    finally:
        await channel.close()
        await server.stop(0)
    first, *tasks, last = messages
    assert (first.tasks_done, first.tasks_total, first.task_id) == (0, 5, "")
    assert [m.tasks_done for m in tasks] == [1, 2, 3, 4, 5] and all(m.tasks_total == 5 for m in tasks)
    assert len({m.task_id for m in tasks}) == 5 and not any(m.passed for m in tasks)
    assert last.HasField("result") and last.result.metrics.tasks == 5 and len(last.result.trace_ids) == 5


async def test_cancelling_a_stream_suite_stops_its_tasks(site_url: str) -> None:
    asked, stopped = asyncio.Event(), asyncio.Event()

    async def never_answers(request: dict) -> dict:
        asked.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()  # cancelled: the client went away
        return assistant("unreachable")

    server, channel = await _serve(_runner(ScriptedLLM([never_answers], repeat_last=True), site_url))
    try:
        evaluate = agent_pb2.EvaluateRequest(model="candidate", suite="heldout")
        stream = agent_pb2_grpc.AgentStub(channel).StreamSuite(agent_pb2.SuiteRequest(evaluate=evaluate))
        started = await stream.read()
        await asyncio.wait_for(asked.wait(), 10)
        stream.cancel()
        await asyncio.wait_for(stopped.wait(), 10)
    finally:
        await channel.close()
        await server.stop(0)
    assert started.tasks_done == 0 and started.tasks_total == 20


async def test_stream_suite_without_a_request_is_invalid() -> None:
    server, channel = await _serve(_runner(ScriptedLLM([])))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            [m async for m in agent_pb2_grpc.AgentStub(channel).StreamSuite(agent_pb2.SuiteRequest())]
    finally:
        await channel.close()
        await server.stop(0)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
