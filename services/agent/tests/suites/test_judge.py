"""The LLM judge: what it is asked (temperature 0, the rubric, the run), how its answer is read, and
that a judge that is down or answers nonsense is an `error`, never a pass."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tracewheel.agent.checking import judge
from tracewheel.agent.suites import CheckContext, run_check
from tracewheel.agent.suites.checks.context import InferenceEndpoint
from tracewheel.agent.suites.checks.judge import PROMPT_SEPARATOR, parse_judge_answer
from tracewheel.agent.suites.spec import Judge, JudgeEndpoint
from tracewheel.agent.tasks import Task
from tracewheel.core.natsserver import free_port
from tracewheel.core.trace import Message, Outcome, ToolCall, Verdict

RUBRIC = "The answer names the cheaper item."


def _judge_app(reply: str, asked: list[dict[str, Any]]) -> Starlette:
    """An OpenAI-compatible endpoint that answers every chat completion with `reply`."""

    async def completions(request: Request) -> JSONResponse:
        asked.append({"body": await request.json(), "auth": request.headers.get("authorization")})
        return JSONResponse({"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]})

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


def _task(endpoint: JudgeEndpoint | None, min_score: float | None = None) -> Task:
    check = Judge(kind="judge", rubric=RUBRIC, endpoint=endpoint, min_score=min_score)
    return Task("s", "t1", "", "Which is cheaper, the yo-yo or the kite?", {}, check=check)


MESSAGES = [
    Message(role="user", content="Which is cheaper?"),
    Message(
        role="assistant",
        tool_calls=[ToolCall(id="c1", function={"name": "browser_navigate", "arguments": '{"url": "http://s/"}'})],
    ),
    Message(role="tool", tool_call_id="c1", name="browser_navigate", content="page"),
    Message(role="assistant", content="The yo-yo."),
]


async def _outcome(reply: str, task: Task, asked: list[dict[str, Any]], **kwargs: Any) -> Outcome:
    transport = httpx.ASGITransport(app=_judge_app(reply, asked))
    async with httpx.AsyncClient(transport=transport) as http:
        context = CheckContext(task=task, final_answer="The yo-yo.", http=http, messages=MESSAGES, **kwargs)
        result = await run_check(task.check, context)  # type: ignore[arg-type]
    return Outcome(verdict=result.verdict, score=result.score, detail=result.reason, judgments=list(result.judgments))


async def test_the_judge_is_asked_at_temperature_0_and_its_exchange_is_kept() -> None:
    asked: list[dict[str, Any]] = []
    reply = '<think>the yo-yo is named</think>{"verdict": "pass", "score": 0.9, "reason": "names the yo-yo"}'
    endpoint = JudgeEndpoint(base_url="http://judge/v1", model="grader")
    outcome = await _outcome(reply, _task(endpoint), asked)
    assert outcome.verdict == Verdict.PASSED and outcome.score == 0.9
    body = asked[0]["body"]
    assert body["model"] == "grader" and body["temperature"] == 0 and asked[0]["auth"] == "Bearer EMPTY"
    system, user = (m["content"] for m in body["messages"])
    assert RUBRIC in system and "Which is cheaper, the yo-yo" in user
    assert 'browser_navigate({"url": "http://s/"})' in user and user.endswith("Final answer:\nThe yo-yo.")
    [judgment] = outcome.judgments
    assert judgment.prompt == system + PROMPT_SEPARATOR + user and judgment.answer == reply
    assert (judgment.model, judgment.base_url, judgment.reason) == ("grader", "http://judge/v1", "names the yo-yo")


async def test_the_default_endpoint_is_the_agents_inference_server_and_keys_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[dict[str, Any]] = []
    inference = InferenceEndpoint("http://inference/v1", "agent-key")
    fail = '{"verdict": "fail", "reason": "wrong item"}'
    outcome = await _outcome(fail, _task(JudgeEndpoint(model="m")), asked, inference=inference)
    assert outcome.verdict == Verdict.FAILED and outcome.score == 0.0 and asked[0]["auth"] == "Bearer agent-key"
    monkeypatch.setenv("TEAM_JUDGE_KEY", "s3cret")
    keyed = JudgeEndpoint(base_url="http://judge/v1", model="m", api_key_env="TEAM_JUDGE_KEY")
    await _outcome(fail, _task(keyed), asked)
    assert asked[1]["auth"] == "Bearer s3cret"
    below = await _outcome('{"verdict": "pass", "score": 0.4}', _task(keyed, min_score=0.5), asked)
    assert below.verdict == Verdict.FAILED and "below 0.5" in below.detail


@pytest.mark.parametrize(
    "reply",
    ["I think it passes.", '{"verdict": "maybe", "score": 1}', '{"verdict": "pass", "score": 7}', '["pass"]', ""],
)
async def test_an_answer_that_does_not_parse_is_an_error_never_a_pass(reply: str) -> None:
    asked: list[dict[str, Any]] = []
    outcome = await _outcome(reply, _task(JudgeEndpoint(base_url="http://judge/v1", model="m")), asked)
    assert outcome.verdict == Verdict.ERROR and "does not parse" in outcome.detail
    assert outcome.judgments[0].answer == reply and outcome.judgments[0].verdict == Verdict.ERROR


async def test_a_judge_that_is_down_is_an_error_verdict_in_the_trace() -> None:
    down = JudgeEndpoint(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", timeout_s=5)
    outcome = await judge(_task(down), Outcome(final_answer="The yo-yo."), messages=MESSAGES)
    assert outcome.verdict == Verdict.ERROR and "did not answer: ConnectError" in outcome.detail
    [judgment] = outcome.judgments
    assert judgment.answer == "" and RUBRIC in judgment.prompt and judgment.verdict == Verdict.ERROR


async def test_a_missing_key_variable_is_an_error() -> None:
    keyed = JudgeEndpoint(base_url="http://judge/v1", model="m", api_key_env="TW_TEST_NO_SUCH_KEY")
    outcome = await _outcome('{"verdict": "pass"}', _task(keyed), [])
    assert outcome.verdict == Verdict.ERROR and "TW_TEST_NO_SUCH_KEY is not set" in outcome.detail


def test_parsing_reads_json_in_fences_and_defaults_the_score() -> None:
    assert parse_judge_answer('```json\n{"verdict": "PASSED"}\n```') == (Verdict.PASSED, 1.0, "")
    assert parse_judge_answer(json.dumps({"verdict": "fail", "score": 0, "reason": "r"})) == (Verdict.FAILED, 0.0, "r")
