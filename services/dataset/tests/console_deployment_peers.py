"""The deployment pages' peers for tests: inference's real control servicer over a deployment record,
and the agent's real servicer reading evaluation trace files, each on its own gRPC server.

The registry lists its adapters without loading weights (no engine: moving an alias never touches
them), the gate's decisions are taken by inference's own `DeployGate`, and every task result's
trace is written by the agent's own `EvalTraceFiles`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.events import EvalTraceFiles
from tracewheel.agent.runner import AgentRunner
from tracewheel.agent.server import AgentServicer
from tracewheel.agent.testing import ScriptedLLM
from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.core.files import write_json_atomically
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.core.trace import Trace
from tracewheel.inference.adapters import ModelRegistry, PeftAdapters
from tracewheel.inference.deploy import Decision, Deployer, DeploymentRecord
from tracewheel.inference.gate import DeployGate
from tracewheel.inference.server import InferenceControlServicer
from tracewheel.v1 import agent_pb2_grpc, inference_pb2, inference_pb2_grpc

HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
HOSTILE_ADAPTER = "a3<img src=x onerror=alert(1)>"
TASKS = 8


def evaluation(model: str, solved: str, detail: str = "", traces: str = "") -> EvalResult:
    """`model`'s held-out evaluation on TASKS tasks, the ids in `solved` passed; its traces are
    `trace-<traces or model>-t<i>`."""
    passed = set(solved.split())
    results = [
        TaskResult(
            task_id=f"t{i}",
            passed=f"t{i}" in passed,
            template="price_lookup" if i <= 4 else "order_form",
            verdict="passed" if f"t{i}" in passed else "failed",
            steps=2 + i % 3,
            tool_calls=2,
            attempted_calls=2,
            valid_tool_calls=2,
            right_tool_calls=1,
            tokens=900 + i,
            latency_s=1.5,
            detail=detail or ("answer matched" if f"t{i}" in passed else f"expected price {i}.50"),
            trace_id=f"trace-{traces or model}-t{i}",
        )
        for i in range(1, TASKS + 1)
    ]
    return EvalResult(model=model, suite="shop-heldout", task_results=results)


def _eval_trace(result: TaskResult, model: str) -> Trace:
    answer = f"The price is {result.task_id}." if result.passed else f"I could not find it. {HOSTILE}"
    call = {"id": f"chatcmpl-tool-{result.trace_id}", "function": {"name": "browser_navigate", "arguments": "{}"}}
    return Trace.model_validate(
        {
            "id": result.trace_id,
            "model": model,
            "messages": [
                {"role": "user", "content": f"What does the product of task {result.task_id} cost?"},
                {"role": "assistant", "content": None, "reasoning_content": "Open the shop.", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": call["id"], "name": "browser_navigate", "content": HOSTILE},
                {"role": "assistant", "content": answer},
            ],
            "task": {"suite": "shop-heldout", "task_id": result.task_id, "prompt": "Price?", "split": "heldout"},
            "outcome": {"verdict": result.verdict, "final_answer": answer, "detail": f"{result.detail} {HOSTILE}"},
        }
    )


@dataclass
class DeploymentPeers:
    """What the tests hold: the registry inference serves from, and the two servers' addresses."""

    registry: ModelRegistry
    inference: str
    agent: str


def _decide(adapter: str, candidate: EvalResult, current: EvalResult, gate: DeployGate, previous: str) -> Decision:
    verdict = gate.decide(candidate, current)
    return Decision(
        deployed=verdict.deploy, alias="agent", adapter=adapter, previous=previous, reason=verdict.reason,
        gate=gate, candidate=candidate, compared_with=current, split=verdict.split,
    )  # fmt: skip


def _inference_servicer(state: Path) -> tuple[InferenceControlServicer, ModelRegistry, dict[str, EvalResult]]:
    """A registry serving tiny, a1 (behind `agent`, deployed over tiny) and a2 and a hostile name (kept)."""
    base, a1, a2 = evaluation("tiny", "t1 t2"), evaluation("a1", "t1 t2 t3 t4 t5 t6"), evaluation("a2", "t1 t3 t4 t7")
    hostile = evaluation(HOSTILE_ADAPTER, "t1", detail=HOSTILE, traces="a3")
    decisions = {
        "a1": _decide("a1", a1, base, DeployGate("paired", max_p=0.1), "tiny"),
        "a2": _decide("a2", a2, a1, DeployGate("paired", max_p=0.1), "a1"),
        HOSTILE_ADAPTER: Decision(
            deployed=False,
            alias="agent",
            adapter=HOSTILE_ADAPTER,
            previous="a1",
            reason=f"refused: {HOSTILE}",
            candidate=hostile,
        ),
    }
    record = DeploymentRecord(evaluations={"tiny": base, "a1": a1, "a2": a2}, decisions=decisions)
    write_json_atomically(state / "deployments.json", record.model_dump(mode="json"))
    adapters = {name: str(state / name) for name in ("a1", "a2")}
    registry = ModelRegistry(
        PeftAdapters(engine=None), "tiny", adapters=adapters,
        aliases={"agent": "a1", "canary": "tiny"}, history={"agent": ["tiny"]},
    )  # fmt: skip
    deployer = Deployer(registry, state / "deployments.json", alias="agent")
    return InferenceControlServicer(registry, deployer), registry, {"tiny": base, "a1": a1, "a2": a2}


async def _write_eval_traces(folder: Path, evaluations: dict[str, EvalResult]) -> None:
    keep = EvalTraceFiles(folder)
    for model, result in evaluations.items():
        for task in result.task_results or ():
            await keep(_eval_trace(task, model))


def _agent_servicer(eval_traces: Path) -> AgentServicer:
    runner = AgentRunner(
        llm=ScriptedLLM([]), factory=None, config=LoopOptions(),  # type: ignore[arg-type]
        default_model="agent", site_url="http://127.0.0.1:9",
    )  # fmt: skip
    return AgentServicer(runner, eval_trace_dir=eval_traces)


async def _serve(service: str, add: Any, servicer: Any) -> tuple[GrpcServer, str]:
    server = GrpcServer([service])
    port = server.bind("127.0.0.1", 0)
    add(servicer, server.server)
    await server.start()
    return server, f"127.0.0.1:{port}"


async def served_aliases(address: str) -> dict[str, str]:
    """Each alias and its target, as inference's ListModels answers."""
    async with grpc.aio.insecure_channel(address) as channel:
        listed = await inference_pb2_grpc.InferenceControlStub(channel).ListModels(inference_pb2.ListModelsRequest())
    return {model.name: model.target for model in listed.models if model.kind == "alias"}


@asynccontextmanager
async def deployment_peers(tmp_path: Path) -> AsyncIterator[DeploymentPeers]:
    """Inference and agent servers for the deployment pages, stopped on exit."""
    servicer, registry, evaluations = _inference_servicer(tmp_path)
    await _write_eval_traces(tmp_path / "eval-traces", evaluations)
    inference, inference_address = await _serve(
        "tracewheel.v1.InferenceControl", inference_pb2_grpc.add_InferenceControlServicer_to_server, servicer
    )
    agent, agent_address = await _serve(
        "tracewheel.v1.Agent", agent_pb2_grpc.add_AgentServicer_to_server, _agent_servicer(tmp_path / "eval-traces")
    )
    try:
        yield DeploymentPeers(registry, inference_address, agent_address)
    finally:
        await agent.stop(0)
        await inference.stop(0)
