"""An evaluation run's trace read back from the files EvalTraceFiles writes, directly and over gRPC."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from tracewheel.agent.eval_traces import find_eval_trace
from tracewheel.agent.events import EvalTraceFiles
from tracewheel.agent.runner import AgentRunner
from tracewheel.agent.server import AgentServicer
from tracewheel.agent.testing import ScriptedLLM
from tracewheel.core.errors import InvalidArgument, NotFound
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.core.trace import Trace
from tracewheel.core.trace_proto import trace_from_proto
from tracewheel.v1 import agent_pb2, agent_pb2_grpc

from .test_server import _runner


def eval_trace(trace_id: str, model: str = "agent-a1", suite: str = "shop-heldout") -> Trace:
    return Trace.model_validate(
        {
            "id": trace_id,
            "model": model,
            "messages": [
                {"role": "user", "content": "Price of the red kettle?"},
                {"role": "assistant", "content": "9"},
            ],
            "task": {"suite": suite, "task_id": "price-1", "prompt": "Price of the red kettle?", "split": "heldout"},
            "outcome": {"verdict": "failed", "detail": "expected 12.50"},
        }
    )


async def test_a_written_evaluation_trace_is_found_by_its_id(tmp_path: Path) -> None:
    trace = eval_trace("trace-0a1b")
    await EvalTraceFiles(tmp_path)(trace)
    await EvalTraceFiles(tmp_path)(eval_trace("trace-other", model="tiny"))
    assert find_eval_trace(tmp_path, "trace-0a1b") == trace


@pytest.mark.parametrize("trace_id", ["", "../secret", "a/b", ".hidden", "*", "trace?", "x" * 201, "tr\u00e4ce"])
def test_an_id_that_is_not_a_plain_file_name_is_refused(tmp_path: Path, trace_id: str) -> None:
    with pytest.raises(InvalidArgument, match="is not a trace file name"):
        find_eval_trace(tmp_path, trace_id)


def test_an_unknown_id_or_no_folder_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no evaluation trace 'trace-nope'"):
        find_eval_trace(tmp_path, "trace-nope")
    with pytest.raises(NotFound, match="reads no evaluation trace folder"):
        find_eval_trace(None, "trace-nope")


async def test_get_eval_trace_over_grpc(tmp_path: Path) -> None:
    trace = eval_trace("trace-0a1b")
    await EvalTraceFiles(tmp_path)(trace)
    runner: AgentRunner = _runner(ScriptedLLM([]))
    server = GrpcServer(["tracewheel.v1.Agent"])
    port = server.bind("127.0.0.1", 0)
    agent_pb2_grpc.add_AgentServicer_to_server(AgentServicer(runner, eval_trace_dir=tmp_path), server.server)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        stub = agent_pb2_grpc.AgentStub(channel)
        got = await stub.GetEvalTrace(agent_pb2.GetEvalTraceRequest(trace_id="trace-0a1b"))
        assert trace_from_proto(got) == trace
        codes = {}
        for trace_id in ("trace-nope", "../trace-0a1b"):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetEvalTrace(agent_pb2.GetEvalTraceRequest(trace_id=trace_id))
            codes[trace_id] = caught.value.code()
    finally:
        await channel.close()
        await server.stop(0)
    assert codes == {"trace-nope": grpc.StatusCode.NOT_FOUND, "../trace-0a1b": grpc.StatusCode.INVALID_ARGUMENT}
