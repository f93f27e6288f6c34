"""The agent against the real pieces: inference (tiny model), gateway tools (LocalGateway,
chromium), the task site, and a real nats-server receiving the trace."""

import openai
import pytest

from tracewheel.agent.checking import core_task
from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.events import TraceOutput
from tracewheel.agent.loop import run_agent
from tracewheel.agent.tasks import load_suite
from tracewheel.agent.tool_schemas import TASK_TOOLS
from tracewheel.agent.tools import LocalGateway
from tracewheel.core.events import SUBJECT_TRACE_COMPLETED, connect, ensure_streams
from tracewheel.core.trace_proto import trace_from_proto
from tracewheel.core.trelis import read_trelis_file
from tracewheel.v1 import events_pb2

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def test_run_publish_and_read_back(
    gateway: LocalGateway, site_url: str, inference_service, nats_server, tmp_path
):
    task = load_suite("train", 0, size=1, base_url=site_url)[0]
    config = LoopOptions(tools=TASK_TOOLS, max_steps=2, time_limit_s=60, enable_thinking=False)
    tools = await gateway.open(TASK_TOOLS, config.result_char_limit)
    try:
        async with openai.AsyncOpenAI(base_url=inference_service.http_url, api_key="x", max_retries=0) as llm:
            trace = await run_agent(
                task.prompt, llm=llm, model="agent", tools=tools, config=config, task=core_task(task)
            )
    finally:
        await tools.close()
    assert trace.model == "agent" and trace.task.task_id == task.task_id
    assert trace.metadata.usage.completion_tokens > 0 and trace.metadata.timings_s["model"] > 0
    assert trace.outcome is not None and trace.metadata.extra["stop_reason"] in ("final_answer", "max_steps")

    client, js = await connect(nats_server.url, "agent-test")
    try:
        await ensure_streams(js)
        await TraceOutput(js, tmp_path / "traces")(trace)
        stored = await js.get_last_msg("TRACES", SUBJECT_TRACE_COMPLETED)
    finally:
        await client.close()
    assert stored.headers["Nats-Msg-Id"] == trace.id
    payload = events_pb2.TraceCompleted.FromString(stored.data)
    back = trace_from_proto(payload.trace)
    assert back.id == trace.id and back.messages == trace.messages
    assert [t.function.name for t in back.tools] == [t.function.name for t in trace.tools]
    assert read_trelis_file(tmp_path / "traces" / f"{trace.id}.json").id == trace.id
