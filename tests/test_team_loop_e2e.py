"""A team's loop end to end: an agent written with the official `openai` and `mcp` packages only
(tests/team_agent.py, not tracewheel's agent) runs the train tasks of the team's suite through
capture and the gateway's /mcp, and reports each outcome; then, by events alone: curation ->
build -> training -> evaluation on the suite's held-out split -> the gate.

The team's model is a scripted teacher (an OpenAI-compatible server in this test) behind the
inference service's pass-through mode, as a teacher on vLLM would be; the student the stack
trains and serves is the tiny test model (the `--quick` profile).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import HTMLResponse

from tracewheel.cli.demo_profiles import quick_profile
from tracewheel.cli.flywheel import Flywheel
from tracewheel.cli.stack import StackInfo, Supervisor
from tracewheel.core.http_server import HttpServer
from tracewheel.core.trace_proto import trace_from_proto
from tracewheel.inference.testing import running_inference_service, tiny_test_model
from tracewheel.v1 import agent_pb2, dataset_pb2

from .cli_services import BackgroundLoop
from .team_agent import report, run_task
from .test_cli_up import free_offset

pytestmark = pytest.mark.slow

PAGES = {
    "/": ("Team tool", '<h1>Team tool</h1><a href="/releases">Releases</a> <a href="/install">Install</a>'),
    "/releases": ("Releases", "<h1>Releases</h1><p>Current release: 2.1</p><p>Previous: 2.0</p>"),
    "/install": ("Install", "<h1>Install</h1><p>Run pip install team-tool (Python 3.11 or newer).</p>"),
}
# the train tasks: prompt, the page the teacher opens, its answer, what the team's check looks for
TRAIN = {
    "current-release": (
        "Which release of the team tool is current?",
        "/releases",
        "The current release is 2.1.",
        "2.1",
    ),
    "install-command": ("How do I install the team tool?", "/install", "Run pip install team-tool.", "pip install"),
}
SUITE = """\
name: team-docs
tasks:
  - {{id: current-release, split: train, prompt: "{p1}", start_url: "{site}/", check: {{kind: contains, value: "2.1"}}}}
  - {{id: install-command, split: train, prompt: "{p2}", start_url: "{site}/", check: {{kind: contains, value: pip}}}}
  - id: previous-release
    split: heldout
    prompt: Which release came before the current one?
    start_url: {site}/
    check: {{kind: number, value: 2.0}}
  - id: python-version
    split: heldout
    prompt: Which Python version does the team tool need?
    start_url: {site}/
    check: {{kind: contains, value: "3.11"}}
"""
TOOLS = {"browser_navigate", "browser_snapshot"}


def teacher_app(site: str) -> FastAPI:
    """The team's model: opens the page that answers the task, then answers, with its reasoning."""
    app = FastAPI()
    by_prompt = {prompt: (page, answer) for prompt, page, answer, _ in TRAIN.values()}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        messages = body["messages"]
        page, answer = by_prompt[messages[0]["content"]]
        turn = sum(1 for m in messages if m["role"] == "assistant")
        if turn == 0:
            arguments = json.dumps({"url": site + page})
            function = {"name": "browser_navigate", "arguments": arguments}
            call = {"id": f"call-{page.strip('/')}", "type": "function", "function": function}
            message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
            message["reasoning"] = f"The {page} page should say."
        else:
            message = {"role": "assistant", "content": answer, "reasoning": "The page says it."}
        choice = {"index": 0, "message": message, "finish_reason": "tool_calls" if turn == 0 else "stop"}
        usage = {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}
        head = {"id": f"chatcmpl-{page.strip('/')}-{turn}", "object": "chat.completion", "created": 0}
        return JSONResponse({**head, "model": body["model"], "choices": [choice], "usage": usage})

    return app


def _page(request: Request) -> HTMLResponse:
    title, body = PAGES[request.url.path]
    return HTMLResponse(f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>")


@pytest.fixture
def team_servers(background: BackgroundLoop) -> Iterator[tuple[str, str]]:
    """The team's docs site and its teacher model, on free loopback ports."""
    site = FastAPI()
    for path in PAGES:
        site.add_api_route(path, _page)
    servers = [HttpServer(site, "127.0.0.1", 0)]
    background.run(servers[0].start())
    site_url = f"http://127.0.0.1:{servers[0].port}"
    servers.append(HttpServer(teacher_app(site_url), "127.0.0.1", 0))
    background.run(servers[1].start())
    yield site_url, f"http://127.0.0.1:{servers[1].port}/v1"
    for server in servers:
        background.run(server.stop())


def test_a_teams_own_agent_feeds_the_flywheel(
    team_servers: tuple[str, str], background: BackgroundLoop, tmp_path: Path
) -> None:
    site, teacher = team_servers
    host = site.removeprefix("http://")
    env = {**quick_profile(tiny_test_model()).env, "TW_TRAINER_EVAL_SUITE": "team-docs"}
    env["TW_GATEWAY_ALLOW_HOSTS"] = json.dumps([host])
    stack_home, passthrough_home = tmp_path / "stack", tmp_path / "passthrough"
    passthrough_home.mkdir()
    supervisor = Supervisor(stack_home, port_offset=free_offset(), env=env, sink=io.StringIO(), health_timeout_s=120)
    supervisor.start()
    info = StackInfo.read(stack_home)
    assert info is not None
    fw = Flywheel(info)
    nats = supervisor.nats.credentials("inference")  # the pass-through publishes as the inference user
    passthrough_env = {
        "TW_INFERENCE_BACKEND": "upstream",
        "TW_INFERENCE_UPSTREAM_URL": teacher,
        "TW_INFERENCE_CAPTURE": "true",
        "TW_INFERENCE_NATS_URL": nats.nats_url,
        "TW_INFERENCE_NATS_USER": nats.nats_user,
        "TW_INFERENCE_NATS_PASSWORD": nats.nats_password.get_secret_value() if nats.nats_password else "",
    }
    try:
        suite = SUITE.format(site=site, p1=TRAIN["current-release"][0], p2=TRAIN["install-command"][0])
        fw.agent.AddSuite(agent_pb2.AddSuiteRequest(filename="team-docs.yaml", content=suite), timeout=60)
        mcp_url = f"http://127.0.0.1:{info.services['mcp-gateway']['http_port']}/mcp"
        with running_inference_service(tmp_path / "unused", passthrough_home, passthrough_env) as capture:
            answers = {}
            for task_id, (prompt, _, _, expected) in TRAIN.items():
                run_id = f"team-run-{task_id}"
                answers[task_id] = background.run(run_task(capture.http_url, mcp_url, "teacher", run_id, prompt, TOOLS))
                verdict = "passed" if expected in answers[task_id] else "failed"
                report(capture.http_url, run_id, verdict, {"suite": "team-docs", "task_id": task_id, "split": "train"})
            result = fw.wait_round(set(), timeout_s=300)
        stored = fw.dataset.ListTraces(dataset_pb2.ListTracesRequest(page_size=100), timeout=10).traces
        builds = fw.dataset.ListDatasets(dataset_pb2.ListDatasetsRequest(), timeout=10).datasets
    finally:
        fw.close()
        supervisor.stop()

    assert answers == {task_id: answer for task_id, (_, _, answer, _) in TRAIN.items()}
    by_task = {s.trace.task.task_id: s for s in stored}
    assert sorted(by_task) == ["current-release", "install-command"]
    for task_id, row in by_task.items():
        trace = trace_from_proto(row.trace)
        assert row.status == dataset_pb2.CURATION_STATUS_APPROVED, row.reason  # curated by the reported verdict
        assert trace.id == f"team-run-{task_id}" and trace.metadata.source == "capture"
        assert [m.role for m in trace.messages] == ["user", "assistant", "tool", "assistant"]
        assert trace.messages[1].reasoning_content and trace.messages[3].content == answers[task_id]
        assert PAGES[TRAIN[task_id][1]][0] in (trace.messages[2].content or "")  # the page the gateway's browser read
        assert {t.function.name for t in trace.tools} == TOOLS
    assert builds and set(builds[0].trace_ids) <= {row.trace.id for row in stored}
    assert result.state == "SUCCEEDED" and result.deployed, result
    assert result.metrics["suite"] == result.baseline_metrics["suite"] == "team-docs:heldout"
    assert {t["task_id"] for t in result.metrics["task_results"]} == {"previous-release", "python-version"}
