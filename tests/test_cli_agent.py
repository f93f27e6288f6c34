"""`tracewheel run` and `tracewheel eval` against the agent's own servicer and runner (a scripted
model, instant tools, the real task site and checkers): what a person and a script see."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.runner import AgentRunner
from tracewheel.agent.server import AgentServicer
from tracewheel.agent.tasksite import create_app
from tracewheel.agent.testing import ScriptedLLM, StaticToolSession, assistant, tool_call
from tracewheel.core.evaluation import EvalResult
from tracewheel.core.http_server import HttpServer
from tracewheel.v1 import agent_pb2_grpc

from .cli_services import BackgroundLoop, run_cli, serve

HELDOUT_TASKS = 4  # a short held-out suite keeps an evaluation quick


class _Tools:
    async def open(self, tool_names: Any = None, result_char_limit: int = 0) -> StaticToolSession:
        return StaticToolSession()


@pytest.fixture
def agent(background: BackgroundLoop, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Starts the agent service on a scripted model; the CLI finds it through TRACEWHEEL_AGENT_GRPC."""
    started: list[Any] = []

    async def start(llm: ScriptedLLM) -> str:
        site = HttpServer(create_app(), "127.0.0.1", 0)
        await site.start()
        site_url = f"http://127.0.0.1:{site.port}"
        runner = AgentRunner(llm=llm, factory=_Tools(), config=LoopOptions(), default_model="agent",
                             site_url=site_url, suite_sizes={"heldout": HELDOUT_TASKS})  # fmt: skip
        servicer = AgentServicer(runner)
        server, address = await serve("Agent", lambda s: agent_pb2_grpc.add_AgentServicer_to_server(servicer, s))
        started.append((server, site))
        return address

    yield lambda llm: monkeypatch.setenv("TRACEWHEEL_AGENT_GRPC", background.run(start(llm)))
    for server, site in started:
        background.run(server.stop(0))
        background.run(site.stop())


UNPARSED = "<tool_call>{'name': 'browser_click', arguments: }</tool_call>"


def clicks_then_writes_a_broken_call() -> ScriptedLLM:
    click = tool_call("browser_click", {"ref": "e7"})
    return ScriptedLLM(
        [
            assistant(None, tool_calls=[click], reasoning="The kettle is the first link; I click it."),
            assistant(UNPARSED),
        ],
        repeat_last=True,
    )


def test_run_shows_reasoning_calls_results_and_why_it_stopped(agent, capsys) -> None:
    agent(clicks_then_writes_a_broken_call())
    ran = run_cli(capsys, "run", "What is the price of the Blue Kettle?")
    assert ran.code == 0, ran.err
    out = ran.out
    assert "thinks: The kettle is the first link; I click it." in out
    assert 'browser_click({"ref": "e7"})' in out and "<- ok" in out
    assert "says: <tool_call>" in out  # what the model wrote that did not parse
    assert "(no answer)" in out and "outcome: failed" in out
    assert "stopped: the model wrote a tool call that does not parse, so there is no answer" in out


def test_run_json_is_one_event_a_line_ending_with_the_outcome(agent, capsys) -> None:
    agent(ScriptedLLM([assistant("The Blue Kettle costs 24.90 EUR.", reasoning="I know the shop.")]))
    ran = run_cli(capsys, "run", "What is the price of the Blue Kettle?", "--json")
    assert ran.code == 0 and ran.err == ""
    events = [json.loads(line) for line in ran.out.splitlines()]
    assert [e["event"] for e in events] == ["assistant", "finished"]
    assert events[0]["message"]["reasoning_content"] == "I know the shop."
    finished = events[-1]
    assert finished["stop_reason"] == "final_answer" and finished["stopped"] == "the model gave its final answer"
    assert finished["final_answer"] == "The Blue Kettle costs 24.90 EUR." and finished["trace"]["id"]


def test_eval_shows_progress_and_prints_one_json_document(agent, capsys) -> None:
    agent(ScriptedLLM([assistant("no idea")], repeat_last=True))
    ran = run_cli(capsys, "eval", "--model", "candidate", "--json")
    assert ran.code == 0, ran.err
    result = json.loads(ran.out)
    assert result["model"] == "candidate" and result["tasks"] == HELDOUT_TASKS and result["success_rate"] == 0.0
    assert len(result["task_results"]) == HELDOUT_TASKS
    assert f"{HELDOUT_TASKS}/{HELDOUT_TASKS} tasks" in ran.err

    below = run_cli(capsys, "eval", "--model", "candidate", "--json", "--min-success", "0.3")
    assert below.code == 1 and json.loads(below.out)["success_rate"] == 0.0
    assert "below --min-success 0.3" in below.err


def test_eval_writes_its_report_to_the_folder_it_names(agent, home: Path, tmp_path: Path, capsys) -> None:
    agent(ScriptedLLM([assistant("no idea")], repeat_last=True))
    folder = tmp_path / "reports" / "candidate"
    ran = run_cli(capsys, "eval", "--model", "candidate", "--report", str(folder))
    assert ran.code == 0, ran.err
    assert f"report: {folder}" in "".join(ran.out.split("\n"))  # the console may wrap a long path
    assert sorted(p.name for p in folder.parent.iterdir()) == ["candidate"]  # no staging folder left
    assert sorted(p.name for p in folder.iterdir()) == ["report.md", "result.json", "rounds.png"]
    result = EvalResult.model_validate_json((folder / "result.json").read_text())
    assert result.model == "candidate" and result.task_results is not None and len(result.task_results) == HELDOUT_TASKS
    report = (folder / "report.md").read_text()
    assert "# tracewheel eval report" in report and "![rounds](rounds.png)" in report
    assert f"| {result.task_results[0].task_id} | " in report and "| failed |" in report
    assert (folder / "rounds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = run_cli(capsys, "eval", "--model", "candidate", "--report", str(folder))
    assert again.code == 2 and "exists and is not empty" in again.err  # refused before evaluating

    default = run_cli(capsys, "eval", "--model", "candidate", "--report", "--json")
    assert default.code == 0 and json.loads(default.out)["model"] == "candidate"
    (written,) = (home / "reports").iterdir()
    assert written.name.startswith("eval-candidate-") and (written / "result.json").exists()


def test_an_evaluation_that_fails_leaves_no_report_folder(agent, tmp_path: Path, capsys) -> None:
    agent(ScriptedLLM([assistant("no idea")], repeat_last=True))
    folder = tmp_path / "reports" / "nothing"
    ran = run_cli(capsys, "eval", "--model", "candidate", "--suite", "no-such-suite", "--report", str(folder))
    assert ran.code != 0 and "no-such-suite" in ran.err
    assert not folder.parent.exists() or list(folder.parent.iterdir()) == []


def test_ctrl_c_on_eval_cancels_it_on_the_agent(agent, capsys, sigint_raises) -> None:
    asked, stopped = threading.Event(), threading.Event()

    async def never_answers(request: dict[str, Any]) -> dict[str, Any]:
        asked.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()  # the agent cancelled the task when the CLI cancelled its call
        return assistant("unreachable")

    agent(ScriptedLLM([never_answers], repeat_last=True))
    threading.Thread(target=lambda: asked.wait(30) and os.kill(os.getpid(), signal.SIGINT), daemon=True).start()

    ran = run_cli(capsys, "eval", "--model", "candidate")

    assert ran.code == 130 and "interrupted" in ran.err
    assert stopped.wait(10)


def test_an_answer_that_was_all_reasoning_is_said_so(agent, capsys) -> None:
    agent(ScriptedLLM([assistant(None, reasoning="Maybe the kettle page lists it.")]))
    ran = run_cli(capsys, "run", "What is the price of the Blue Kettle?")
    assert ran.code == 0 and "(no answer)" in ran.out
    assert "stopped: the model ended without a tool call and without an answer (it wrote only reasoning)" in " ".join(
        ran.out.split()
    )
