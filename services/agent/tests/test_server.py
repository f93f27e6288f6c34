"""The Agent gRPC service over a real channel: a scripted model, instant tools."""

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
