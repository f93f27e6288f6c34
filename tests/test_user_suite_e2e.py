"""A team's own suite drives the loop on the embedded stack (the tiny model, the `--quick` profile).

A small docs site served by this test (not the shop) and a YAML suite on it: declarative checks for
some tasks, an LLM judge for others (the tiny model through the real inference service: its
verdicts are not wise, the wiring is real), references for the train split. The only calls:
register the suite, replay its references. Then, by events: curation by verdict -> build ->
training -> evaluation on the suite's held-out split -> the gate.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tracewheel.cli.demo_profiles import quick_profile
from tracewheel.cli.flywheel import Flywheel
from tracewheel.cli.stack import StackInfo, Supervisor
from tracewheel.core.http_server import HttpServer
from tracewheel.core.trace import Verdict
from tracewheel.core.trace_proto import trace_from_proto
from tracewheel.inference.testing import tiny_test_model
from tracewheel.v1 import agent_pb2, dataset_pb2

from .cli_services import BackgroundLoop
from .test_cli_up import free_offset

pytestmark = pytest.mark.slow

PAGES = {
    "/": ("Team tool", '<h1>Team tool</h1><a href="/releases">Releases</a> <a href="/install">Install</a>'),
    "/releases": ("Releases", "<h1>Releases</h1><p>Current release: 2.1</p><p>Previous: 2.0</p>"),
    "/install": ("Install", "<h1>Install</h1><p>Run pip install team-tool (Python 3.11 or newer).</p>"),
}
RUBRIC = "The answer gives the pip command that installs team-tool."
SUITE = """\
name: team-docs
judge: {{model: {judge}, max_tokens: 32, timeout_s: 120}}
tasks:
  - id: current-release
    split: train
    prompt: Which release of the team tool is current?
    start_url: {site}/
    allowed_hosts: ["{host}"]
    reference:
      steps:
        - {{tool: browser_navigate, arguments: {{url: "{site}/"}}, reasoning: Open the docs site.}}
        - {{tool: browser_click, target: {{role: link, name: Releases}}, reasoning: The releases page names it.}}
      answer: The current release is 2.1.
    check: {{kind: all, checks: [{{kind: contains, value: "2.1"}}, {{kind: page_url, pattern: /releases$}}]}}
  - id: install-command
    split: train
    prompt: How do I install the team tool?
    start_url: {site}/
    reference:
      steps:
        - {{tool: browser_navigate, arguments: {{url: "{site}/"}}, reasoning: Open the docs site.}}
        - {{tool: browser_click, target: {{role: link, name: Install}}, reasoning: The install page has it.}}
      answer: Run pip install team-tool.
    check: {{kind: judge, rubric: "{rubric}"}}
  - id: previous-release
    split: heldout
    prompt: Which release came before the current one?
    start_url: {site}/
    check: {{kind: all, checks: [{{kind: number, value: 2.0}}, {{kind: page_text, contains: "Previous: 2.0"}}]}}
  - id: python-version
    split: heldout
    prompt: Which Python version does the team tool need?
    start_url: {site}/
    check: {{kind: judge, rubric: The answer says Python 3.11 or newer.}}
"""


def _page(request: Request) -> HTMLResponse:
    title, body = PAGES[request.url.path]
    return HTMLResponse(f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>")


@pytest.fixture
def docs_site(background: BackgroundLoop) -> Iterator[str]:
    """The team's site, on a free loopback port."""
    server = HttpServer(Starlette(routes=[Route(path, _page) for path in PAGES]), "127.0.0.1", 0)
    background.run(server.start())
    yield f"http://127.0.0.1:{server.port}"
    background.run(server.stop())


def test_a_team_suite_drives_curation_training_evaluation_and_the_gate(docs_site: str, tmp_path: Path) -> None:
    profile = quick_profile(tiny_test_model())
    host = docs_site.removeprefix("http://")
    env = {**profile.env, "TW_TRAINER_EVAL_SUITE": "team-docs", "TW_GATEWAY_ALLOW_HOSTS": json.dumps([host])}
    supervisor = Supervisor(tmp_path, port_offset=free_offset(), env=env, sink=io.StringIO(), health_timeout_s=120)
    supervisor.start()
    info = StackInfo.read(tmp_path)
    assert info is not None
    fw = Flywheel(info)
    try:
        judge = fw.base_model()  # the tiny model judges, through the agent's own inference server
        suite = SUITE.format(judge=json.dumps(judge), site=docs_site, host=host, rubric=RUBRIC)
        added = fw.agent.AddSuite(agent_pb2.AddSuiteRequest(filename="team-docs.yaml", content=suite), timeout=60)
        assert (added.train_tasks, added.heldout_tasks) == (2, 2)
        demos = fw.collect_demonstrations(240, suite="team-docs")
        result = fw.wait_round(set(), timeout_s=300)
        stored = fw.dataset.ListTraces(dataset_pb2.ListTracesRequest(page_size=100), timeout=10).traces
        builds = fw.dataset.ListDatasets(dataset_pb2.ListDatasetsRequest(), timeout=10).datasets
    finally:
        fw.close()
        supervisor.stop()

    assert demos["suite"] == "team-docs:train" and demos["tasks"] == 2
    by_task = {s.trace.task.task_id: s for s in stored}
    assert sorted(by_task) == ["current-release", "install-command"]  # held-out runs are never published
    declared = by_task["current-release"]
    assert declared.status == dataset_pb2.CURATION_STATUS_APPROVED, declared.reason  # curated by its verdict
    assert "final page " + docs_site + "/releases matches" in declared.trace.outcome.detail
    judged = trace_from_proto(by_task["install-command"].trace)
    assert judged.task is not None and judged.task.split == "train"
    [judgment] = judged.outcome.judgments  # type: ignore[union-attr]
    assert judgment.model == judge and RUBRIC in judgment.prompt and "Run pip install team-tool." in judgment.prompt
    if judgment.verdict == Verdict.ERROR:  # what the tiny random model answers does not parse
        assert by_task["install-command"].status == dataset_pb2.CURATION_STATUS_REJECTED
    assert all(set(b.trace_ids) <= {declared.trace.id, judged.id} for b in builds)

    assert result.state == "SUCCEEDED" and result.deployed, result
    assert result.metrics["suite"] == result.baseline_metrics["suite"] == "team-docs:heldout"
    assert result.metrics["tasks"] == 2 and {t["task_id"] for t in result.metrics["task_results"]} == {
        "previous-release",
        "python-version",
    }
