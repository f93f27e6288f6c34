"""`tracewheel suites add|list|show|validate|schema` and `eval --suite NAME` against the agent's own
servicer (a scripted model, instant tools): what a person and a script see."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.runner import AgentRunner
from tracewheel.agent.server import AgentServicer
from tracewheel.agent.testing import ScriptedLLM, StaticToolSession, assistant
from tracewheel.core.trace import Judgment, Message, Outcome, Trace, Verdict
from tracewheel.v1 import agent_pb2_grpc, dataset_pb2_grpc

from .cli_services import BackgroundLoop, dataset_service, run_cli, serve

SUITE = """\
name: team
description: a team's questions
tasks:
  - {id: sum, prompt: "What is 2 + 2?", split: heldout, check: {kind: number, value: 4}}
  - {id: word, prompt: "Say hello.", split: heldout, group: greetings, check: {kind: contains, value: hello}}
  - id: learn
    prompt: What is 1 + 1?
    split: train
    reference: {answer: "2"}
    check: {kind: all, checks: [{kind: number, value: 2}, {kind: regex, pattern: "^\\\\d+$"}]}
"""


class _Tools:
    async def open(self, tool_names: Any = None, result_char_limit: int = 0) -> StaticToolSession:
        return StaticToolSession()


@pytest.fixture
def agent(background: BackgroundLoop, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The agent service on a model that always answers 4; its suites folder is returned."""
    suites = home / "agent" / "suites"

    async def start() -> tuple[Any, str]:
        runner = AgentRunner(
            llm=ScriptedLLM([assistant("It is 4.")], repeat_last=True), factory=_Tools(), config=LoopOptions(),
            default_model="agent", site_url="http://127.0.0.1:9", suite_sizes={"train": 2, "heldout": 2},
            suites_dir=suites,
        )  # fmt: skip
        servicer = AgentServicer(runner)
        return await serve("Agent", lambda s: agent_pb2_grpc.add_AgentServicer_to_server(servicer, s))

    server, address = background.run(start())
    monkeypatch.setenv("TRACEWHEEL_AGENT_GRPC", address)
    yield suites
    background.run(server.stop(0))


def test_a_suite_is_added_listed_shown_and_evaluated(agent: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(SUITE)
    added = run_cli(capsys, "suites", "add", str(path))
    assert added.code == 0, added.err
    assert "registered team: 1 train and 2 held-out tasks; checkers: all, contains, number, regex" in " ".join(
        added.out.split()
    )
    listed = run_cli(capsys, "suites", "list", "--json")
    assert [(s["name"], s["train_tasks"], s["heldout_tasks"]) for s in json.loads(listed.out)] == [
        ("shop", 2, 2),
        ("team", 1, 2),
    ]
    shown = run_cli(capsys, "suites", "show", "team", "--json")
    data = json.loads(shown.out)
    assert data["content"] == SUITE and [(t["id"], t["split"]) for t in data["tasks"]] == [
        ("sum", "heldout"), ("word", "heldout"), ("learn", "train")
    ]  # fmt: skip
    assert "greetings" in run_cli(capsys, "suites", "show", "team").out
    evaluated = run_cli(capsys, "eval", "--model", "m", "--suite", "team", "--json")
    assert evaluated.code == 0, evaluated.err
    result = json.loads(evaluated.out)
    assert result["suite"] == "team:heldout" and result["tasks"] == 2 and result["success_rate"] == 0.5


def test_a_bad_file_lists_every_problem_and_registers_nothing(agent: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(SUITE.replace("value: 4}", "value: 4, within: 1}").replace("kind: contains", "kind: has"))
    added = run_cli(capsys, "suites", "add", str(path))
    assert added.code == 2 and added.out == ""
    lines = added.err.splitlines()
    assert lines[0] == f"error: {path} is not a valid suite (2 problem(s)):"
    assert lines[1:] == [
        f"{path}: task 'sum': check.within: unknown field",
        f"{path}: task 'word': check: no checker kind 'has'; known kinds: equals, contains, regex, number, "
        "json_subset, page_url, page_text, page_field, http_json, python, judge, all, any",
    ]
    assert not agent.exists() or list(agent.iterdir()) == []
    validated = run_cli(capsys, "suites", "validate", str(path))
    assert validated.code == 2 and validated.err.splitlines()[1:] == lines[1:]
    path.write_text(SUITE)
    assert run_cli(capsys, "suites", "validate", str(path)).code == 0
    assert run_cli(capsys, "suites", "show", "nope").code == 2


def test_the_schema_is_printed_without_a_service(home: Path, capsys) -> None:
    schema = run_cli(capsys, "suites", "schema")
    assert schema.code == 0 and json.loads(schema.out)["title"] == "tracewheel task suite"


def test_traces_show_says_what_the_judge_was_asked_and_answered(
    background: BackgroundLoop, tmp_path: Path, capsys
) -> None:
    servicer, store = dataset_service(tmp_path)
    register = lambda server: dataset_pb2_grpc.add_DatasetServicer_to_server(servicer, server)  # noqa: E731
    server, address = background.run(serve("Dataset", register))
    judgment = Judgment(model="grader", prompt="Rubric: names the price.", answer='{"verdict": "fail"}',
                        verdict=Verdict.FAILED, reason="no price named")  # fmt: skip
    outcome = Outcome(verdict=Verdict.FAILED, final_answer="no idea", judgments=[judgment])
    messages = [Message(role="user", content="What costs $7?"), Message(role="assistant", content="no idea")]
    store.ingest(Trace(id="judged", model="m", messages=messages, outcome=outcome))
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("TRACEWHEEL_HOME", str(tmp_path / "home"))
            patch.setenv("TRACEWHEEL_DATASET_GRPC", address)
            short = run_cli(capsys, "traces", "show", "judged")
            full = run_cli(capsys, "traces", "show", "judged", "--full")
    finally:
        background.run(server.stop(0))
        store.close()
    assert "judge grader: failed (score 0): no price named" in short.out and "asked:" not in short.out
    assert "asked: Rubric: names the price." in full.out and 'answered: {"verdict": "fail"}' in full.out
