"""A team's suite file through the Agent gRPC service: registered, evaluated on its held-out split,
replayed as demonstrations from its references, with its tool subset, allowed hosts and end-state
checks (a scripted model, instant tools whose snapshot shows a fixed page)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.runner import AgentRunner
from tracewheel.agent.server import AgentServicer
from tracewheel.agent.testing import ScriptedLLM, StaticToolSession, assistant, tool_call
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.core.trace import Trace
from tracewheel.v1 import agent_pb2, agent_pb2_grpc

SNAPSHOT = '- Page URL: http://docs.test:8500/releases\n- Page Snapshot:\n```yaml\n- heading "Release 2.1"\n```'
SUITE = """\
name: team
tasks:
  - id: learn-version
    split: train
    prompt: Which release is current?
    tools: [browser_snapshot]
    reference:
      steps: [{tool: browser_snapshot, reasoning: Read the page.}]
      answer: Release 2.1
    check: {kind: contains, value: "2.1"}
  - id: find-releases
    split: heldout
    prompt: Open the releases page and say which release is current.
    start_url: http://docs.test:8500/
    allowed_hosts: [docs.test:8500]
    tools: [browser_navigate]
    check:
      kind: all
      checks:
        - {kind: page_url, pattern: /releases$}
        - {kind: page_text, contains: Release 2.1}
        - {kind: regex, pattern: '2\\.1'}
"""


class _Factory:
    def __init__(self) -> None:
        self.opened: list[list[str] | None] = []
        self.sessions: list[StaticToolSession] = []

    async def open(self, tool_names: list[str] | None = None, result_char_limit: int = 0) -> StaticToolSession:
        self.opened.append(tool_names)
        names = ("browser_navigate", "browser_snapshot", "browser_click")
        session = StaticToolSession(names, answers={"browser_snapshot": SNAPSHOT})
        self.sessions.append(session)
        return session


async def _serve(runner: AgentRunner) -> tuple[GrpcServer, grpc.aio.Channel]:
    server = GrpcServer(["tracewheel.v1.Agent"])
    port = server.bind("127.0.0.1", 0)
    agent_pb2_grpc.add_AgentServicer_to_server(AgentServicer(runner), server.server)
    await server.start()
    return server, grpc.aio.insecure_channel(f"127.0.0.1:{port}")


def _runner(
    llm: ScriptedLLM, factory: _Factory, suites: Path, published: list[Trace], kept: list[Trace]
) -> AgentRunner:
    async def publish(trace: Trace) -> None:
        published.append(trace)

    async def keep(trace: Trace) -> None:
        kept.append(trace)

    config = LoopOptions(tools=("browser_navigate", "browser_click"), max_steps=4)
    return AgentRunner(
        llm=llm, factory=factory, config=config, default_model="agent", site_url="http://127.0.0.1:9",
        on_trace=publish, on_eval_trace=keep, suites_dir=suites,
    )  # fmt: skip


async def test_a_registered_suite_is_evaluated_on_its_held_out_split_and_replayed_from_its_train_split(
    tmp_path: Path,
) -> None:
    navigate = tool_call("browser_navigate", {"url": "http://docs.test:8500/releases"}, "c1")
    outside = tool_call("browser_navigate", {"url": "http://elsewhere.test/"}, "c2")
    llm = ScriptedLLM([assistant(None, tool_calls=[outside]), assistant(None, tool_calls=[navigate]), assistant("2.1")])
    factory, published, kept = _Factory(), [], []
    server, channel = await _serve(_runner(llm, factory, tmp_path, published, kept))
    try:
        stub = agent_pb2_grpc.AgentStub(channel)
        added = await stub.AddSuite(agent_pb2.AddSuiteRequest(filename="team.yaml", content=SUITE))
        listed = await stub.ListSuites(agent_pb2.ListSuitesRequest())
        shown = await stub.GetSuite(agent_pb2.GetSuiteRequest(name="team"))
        evaluation = await stub.Evaluate(agent_pb2.EvaluateRequest(model="candidate", suite="team"))
        demos = await stub.CollectDemonstrations(agent_pb2.CollectDemonstrationsRequest(suite="team"))
    finally:
        await channel.close()
        await server.stop(0)
    assert (added.train_tasks, added.heldout_tasks) == (1, 1) and added.check_kinds == [
        "all", "contains", "page_text", "page_url", "regex"
    ]  # fmt: skip
    assert [(s.name, s.source) for s in listed.suites] == [("shop", "bundled"), ("team", str(tmp_path / "team.yaml"))]
    assert shown.content == SUITE and [t.task_id for t in shown.tasks] == ["learn-version", "find-releases"]
    assert shown.tasks[0].has_reference and not shown.tasks[1].has_reference

    assert evaluation.suite == "team:heldout" and evaluation.tasks == 1 and evaluation.success_rate == 1.0
    [run] = kept
    assert run.task is not None and (run.task.suite, run.task.split) == ("team", "heldout")
    first_result = next(m for m in run.messages if m.role == "tool")
    assert "outside this task's allowed hosts" in (first_result.content or "")
    assert run.outcome is not None and "final page http://docs.test:8500/releases matches" in run.outcome.detail
    # the task's own subset, plus the snapshot its end-state check takes after the run, not offered
    assert factory.opened[0] == ["browser_navigate", "browser_snapshot"]
    assert [t["function"]["name"] for t in llm.requests[0]["tools"]] == ["browser_navigate"]
    assert factory.sessions[0].calls[-1] == ("browser_snapshot", "{}") and factory.sessions[0].closed
    assert "Start at http://docs.test:8500/" in llm.requests[0]["messages"][-1]["content"]

    assert demos.metrics.tasks == 1 and demos.metrics.success_rate == 1.0 and demos.metrics.suite == "team:train"
    [demo] = published
    assert demo.task is not None and demo.task.split == "train" and demo.outcome.final_answer == "Release 2.1"


async def test_held_out_tasks_are_never_published_and_bad_files_register_nothing(tmp_path: Path) -> None:
    factory, published = _Factory(), []
    server, channel = await _serve(
        _runner(ScriptedLLM([assistant("x")], repeat_last=True), factory, tmp_path, published, [])
    )
    try:
        stub = agent_pb2_grpc.AgentStub(channel)
        bad = SUITE.replace("kind: regex", "kind: regexp")
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await stub.AddSuite(agent_pb2.AddSuiteRequest(filename="team.yaml", content=bad))
        names = [s.name for s in (await stub.ListSuites(agent_pb2.ListSuitesRequest())).suites]
        await stub.AddSuite(agent_pb2.AddSuiteRequest(filename="team.yaml", content=SUITE))
        refused = []
        for request in (
            agent_pb2.SuiteRequest(run_suite=agent_pb2.RunSuiteRequest(suite="team:heldout", publish_traces=True)),
            agent_pb2.SuiteRequest(demonstrations=agent_pb2.CollectDemonstrationsRequest(suite="team:heldout")),
            agent_pb2.SuiteRequest(run_suite=agent_pb2.RunSuiteRequest(suite="heldout", publish_traces=True)),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                [m async for m in stub.StreamSuite(request)]
            refused.append((caught.value.code(), caught.value.details()))
        with pytest.raises(grpc.aio.AioRpcError) as taken:
            await stub.AddSuite(agent_pb2.AddSuiteRequest(filename="other.yaml", content=SUITE))
    finally:
        await channel.close()
        await server.stop(0)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "team.yaml: task 'find-releases': check.checks[2]: no checker kind 'regexp'" in invalid.value.details()
    assert names == ["shop"] and list(tmp_path.iterdir()) == [tmp_path / "team.yaml"]
    assert all(code == grpc.StatusCode.INVALID_ARGUMENT for code, _ in refused)
    assert "held-out tasks never feed a build" in refused[0][1] and published == [] and factory.opened == []
    assert taken.value.code() == grpc.StatusCode.ABORTED and "registered already" in taken.value.details()


async def test_a_held_out_task_run_alone_is_kept_not_published(tmp_path: Path) -> None:
    factory, published, kept = _Factory(), [], []
    runner = _runner(ScriptedLLM([assistant("2.1")], repeat_last=True), factory, tmp_path, published, kept)
    runner.add_suite(SUITE, "team.yaml")
    held_out = await runner.run_task(suite="team", task_id="find-releases")
    train = await runner.run_task(suite="team:train", task_id="learn-version")
    assert kept == [held_out] and published == [train]
    assert held_out.outcome is not None and held_out.outcome.verdict.value == "passed"  # its page and answer
