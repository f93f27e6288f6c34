"""The trainer evaluates a job's adapter on the suite the job names (else its configured eval_suite),
through the agent's real servicer with a registered team suite (a scripted model, instant tools, the
shop's site) and a stand-in for inference's control API (it only loads and lists)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.runner import AgentRunner
from tracewheel.agent.server import AgentServicer
from tracewheel.agent.tasksite import create_app
from tracewheel.agent.testing import ScriptedLLM, StaticToolSession, assistant
from tracewheel.core.http_server import HttpServer
from tracewheel.trainer.convert import job_to_proto
from tracewheel.trainer.evaluation import EvalTarget
from tracewheel.trainer.jobs import JobQueue, JobState, JobStore, training_runner
from tracewheel.trainer.recipe import Recipe
from tracewheel.v1 import agent_pb2_grpc, inference_pb2, inference_pb2_grpc

from .cli_services import BackgroundLoop, serve

SUITE = """\
name: team
tasks:
  - {id: a, prompt: "2 + 2?", split: heldout, check: {kind: number, value: 4}}
  - {id: b, prompt: "3 + 3?", split: heldout, check: {kind: number, value: 6}}
  - {id: c, prompt: "1 + 1?", split: train, check: {kind: number, value: 2}}
"""


class _Tools:
    async def open(self, tool_names: Any = None, result_char_limit: int = 0) -> StaticToolSession:
        return StaticToolSession()


class _Control(inference_pb2_grpc.InferenceControlServicer):
    def __init__(self) -> None:
        self.loaded: list[str] = []

    async def LoadAdapter(self, request: Any, context: Any) -> inference_pb2.LoadAdapterResponse:
        self.loaded.append(request.lora_name)
        return inference_pb2.LoadAdapterResponse()

    async def ListModels(self, request: Any, context: Any) -> inference_pb2.ListModelsResponse:
        return inference_pb2.ListModelsResponse(models=[inference_pb2.ServedModel(name="tiny-base", kind="base")])


def test_a_job_is_evaluated_on_its_own_suite(background: BackgroundLoop, tmp_path: Path) -> None:
    control = _Control()
    site = HttpServer(create_app(), "127.0.0.1", 0)
    background.run(site.start())
    runner = AgentRunner(
        llm=ScriptedLLM([assistant("It is 4.")], repeat_last=True), factory=_Tools(), config=LoopOptions(),
        default_model="agent", site_url=f"http://127.0.0.1:{site.port}", suite_sizes={"train": 1, "heldout": 3},
        suites_dir=tmp_path / "suites",
    )  # fmt: skip
    runner.add_suite(SUITE, "team.yaml")
    servicer = AgentServicer(runner)

    async def start() -> list[tuple[Any, str]]:
        add_control = inference_pb2_grpc.add_InferenceControlServicer_to_server
        return [
            await serve("Agent", lambda s: agent_pb2_grpc.add_AgentServicer_to_server(servicer, s)),
            await serve("InferenceControl", lambda s: add_control(control, s)),
        ]

    (agent, agent_address), (inference, inference_address) = background.run(start())
    try:
        target = EvalTarget(agent_address=agent_address, inference_address=inference_address)  # eval_suite: heldout
        run = training_runner(tmp_path / "adapters", Recipe(), lambda name: tmp_path, target)
        queue = JobQueue(JobStore(tmp_path / "jobs.json"), run)
        for version in ("v1", "v2"):
            job = queue.submit(version, f"/data/{version}", "tiny-base", eval_suite="team" if version == "v2" else "")
            (tmp_path / "adapters" / job.id / "adapter").mkdir(parents=True)
            (tmp_path / "adapters" / job.id / "adapter" / "adapter_config.json").write_text("{}")  # trained already
            queue.run_next()
    finally:
        background.run(agent.stop(0))
        background.run(inference.stop(0))
        background.run(site.stop())
    shop_job, team_job = sorted(JobStore(tmp_path / "jobs.json").load().values(), key=lambda j: j.dataset_version)
    assert shop_job.state == team_job.state == JobState.SUCCEEDED
    assert shop_job.metrics is not None and shop_job.metrics.suite == "heldout" and shop_job.metrics.tasks == 3
    assert team_job.metrics is not None and team_job.baseline_metrics is not None
    assert team_job.metrics.suite == team_job.baseline_metrics.suite == "team:heldout"
    assert team_job.metrics.tasks == 2 and team_job.metrics.success_rate == 0.5  # "It is 4." solves task a
    assert team_job.eval_suite == "team" and job_to_proto(team_job).eval_suite == "team"
    assert json.loads((tmp_path / "jobs.json").read_text())[1]["eval_suite"] == "team"
    assert control.loaded == [shop_job.id, team_job.id]
