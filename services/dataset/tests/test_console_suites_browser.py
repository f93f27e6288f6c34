"""The console's suite and report pages in headless Chromium, over the agent's and the inference
service's own servicers (a real suite registry, a real deployment record) and a report folder
written by the CLI's own writer. Text from suites, traces and reports holds markup: shown, never run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.async_api import Page, expect

from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.runner import AgentRunner
from tracewheel.agent.server import AgentServicer
from tracewheel.agent.testing import ScriptedLLM, StaticToolSession
from tracewheel.cli.client_commands import write_eval_report
from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.core.files import write_json_atomically
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.dataset.console import ConsoleConfig, Peers
from tracewheel.dataset.http_api import create_app
from tracewheel.dataset.store import TraceStore
from tracewheel.inference.adapters import ModelRegistry
from tracewheel.inference.deploy import Decision, Deployer, DeploymentRecord
from tracewheel.inference.passthrough import NoAdapters
from tracewheel.inference.server import InferenceControlServicer
from tracewheel.v1 import agent_pb2_grpc, inference_pb2_grpc

from .conftest import TraceFactory
from .web import serving, shoot, url_of

pytestmark = pytest.mark.slow

HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
HOSTILE_MODEL = "<script>alert('model')</script>"


class _Tools:
    async def open(self, tool_names: Any = None, result_char_limit: int = 0) -> StaticToolSession:
        return StaticToolSession()


def _suite_file() -> str:
    tasks = [
        {"id": "t1", "prompt": f"Find the price of the kettle {HOSTILE}", "split": "heldout", "group": "lookup",
         "check": {"kind": "contains", "value": "24.90"}},
        {"id": "t2", "prompt": "Add the kettle to the cart.", "split": "train",
         "check": {"kind": "contains", "value": "ok"}},
    ]  # fmt: skip
    return yaml.safe_dump({"name": "team", "description": f"The team's checks {HOSTILE}", "tasks": tasks})


def _result(model: str, passed: bool, trace_id: str) -> EvalResult:
    task = TaskResult(task_id="t1", passed=passed, template="lookup", verdict="passed" if passed else "failed",
                      detail=f"answer checked {HOSTILE}", trace_id=trace_id)  # fmt: skip
    return EvalResult(model=model, suite="team:heldout", task_results=[task])


def _deployer(state_file: Path) -> Deployer:
    """The inference service's deployment record with one recorded gate decision on the team suite."""
    decision = Decision(
        deployed=True, alias="agent", adapter="job-1", previous=HOSTILE_MODEL, reason="won 1, lost 0",
        candidate=_result("job-1", True, "eval-job-1-t1"), compared_with=_result(HOSTILE_MODEL, False, "eval-base-t1"),
    )  # fmt: skip
    write_json_atomically(state_file, DeploymentRecord(decisions={"job-1": decision}).model_dump(mode="json"))
    return Deployer(ModelRegistry(NoAdapters(), "base"), state_file, alias="agent")


async def _peers(tmp_path: Path) -> tuple[list[GrpcServer], dict[str, str]]:
    runner = AgentRunner(llm=ScriptedLLM([]), factory=_Tools(), config=LoopOptions(), default_model="agent",
                         site_url="http://127.0.0.1:9", suite_sizes={"train": 2, "heldout": 2},
                         suites_dir=tmp_path / "suites")  # fmt: skip
    runner.add_suite(_suite_file(), "team.yaml")
    agent = GrpcServer(["tracewheel.v1.Agent"])
    agent_pb2_grpc.add_AgentServicer_to_server(AgentServicer(runner), agent.server)
    inference = GrpcServer(["tracewheel.v1.InferenceControl"])
    control = InferenceControlServicer(ModelRegistry(NoAdapters(), "base"), _deployer(tmp_path / "deployments.json"))
    inference_pb2_grpc.add_InferenceControlServicer_to_server(control, inference.server)
    addresses = {}
    for name, server in (("agent", agent), ("inference", inference)):
        addresses[name] = f"127.0.0.1:{server.bind('127.0.0.1', 0)}"
        await server.start()
    return [agent, inference], addresses


@dataclass(frozen=True)
class Console:
    url: str
    reports: Path


@pytest.fixture
async def console(store: TraceStore, make_trace: TraceFactory, tmp_path: Path) -> AsyncIterator[Console]:
    store.ingest(make_trace("stored-1", suite="team", task_id="t1", model=HOSTILE_MODEL))
    store.ingest(make_trace("stored-2", suite="team", task_id="t1", model="job-1", verdict="failed",
                            created_at="2026-11-02T10:00:00Z"))  # fmt: skip
    store.ingest(make_trace("shop-run", suite="heldout", task_id="t1", model="job-1"))  # the shop's own t1
    reports = tmp_path / "reports"
    write_eval_report(reports / "eval-job-1", _result(HOSTILE_MODEL, True, "eval-x"), 12.0)
    servers, addresses = await _peers(tmp_path)
    peers = Peers(addresses)  # type: ignore[arg-type]
    app = create_app(store, None, console=ConsoleConfig(peers, None, reports))  # type: ignore[arg-type]
    try:
        async with serving(app) as http:
            yield Console(url_of(http), reports)
    finally:
        await peers.close()
        for server in servers:
            await server.stop(0)


async def test_suites_their_tasks_and_a_tasks_runs_by_model(page: Page, console: Console) -> None:
    await page.goto(f"{console.url}/console/suites")
    team = page.locator("tr[data-suite=team]")
    await expect(team).to_contain_text(f"The team's checks {HOSTILE}")
    await expect(team.locator("td").nth(2)).to_have_text("1")  # train
    await expect(page.locator("tr[data-suite=shop] td").nth(3)).to_have_text("2")  # held-out
    await shoot(page, "suites")

    await team.get_by_role("link", name="team").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Suite team")
    first = page.locator("tr[data-task=t1]")
    await expect(first).to_contain_text(f"Find the price of the kettle {HOSTILE}")
    await expect(first.locator("td").nth(2)).to_have_text("lookup")
    await page.get_by_text("The registered file").click()
    await expect(page.locator("details.suite-file pre")).to_contain_text("name: team")
    await shoot(page, "suites-suite")

    await first.get_by_role("link", name="t1").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Task t1")
    await expect(page.locator("pre.prompt")).to_have_text(f"Find the price of the kettle {HOSTILE}")
    models = page.locator("section.model-runs")
    await expect(models.locator("h3")).to_contain_text(["job-1", HOSTILE_MODEL])
    job = page.locator("section.model-runs").filter(has=page.locator("h3", has_text="job-1"))
    await expect(job.locator("table.stored-runs a")).to_have_text(["stored-2"])  # not the shop's t1
    await expect(job.locator("table.eval-runs a").first).to_have_attribute("href", "/console/runs/eval-job-1-t1")
    base = models.nth(1)
    await expect(base.locator("table.stored-runs a")).to_have_attribute("href", "/traces/stored-1")
    await expect(base.locator("table.eval-runs")).to_contain_text(f"answer checked {HOSTILE}")
    await expect(base.locator("table.eval-runs")).to_contain_text("compared with")
    await shoot(page, "suites-task")
    assert await page.title() != "pwned" and await page.locator("main img").count() == 0


async def test_reports_are_listed_rendered_and_their_plot_shown(page: Page, console: Console) -> None:
    await page.goto(f"{console.url}/console/reports")
    report = page.locator("details.report[data-report=eval-job-1]")
    await expect(report.locator("h2")).to_have_text("tracewheel eval report")
    await expect(report.locator("table").first).to_contain_text(HOSTILE_MODEL)
    plot = report.locator("img")
    await expect(plot).to_have_attribute("src", "/console/reports/eval-job-1/rounds.png")
    assert await plot.evaluate("image => image.complete && image.naturalWidth > 0")
    await shoot(page, "reports")
    assert await page.title() != "pwned"

    served = await page.request.get(f"{console.url}/console/reports/eval-job-1/result.json")
    assert (
        served.headers["content-type"].startswith("text/plain")
        and served.headers["x-content-type-options"] == "nosniff"
    )
    assert (await served.json())["model"] == HOSTILE_MODEL
    assert (await page.request.get(f"{console.url}/console/reports/..%2Fdeployments.json")).status == 404
