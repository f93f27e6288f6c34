"""An LLM judge: any OpenAI-compatible chat endpoint grades a run against a rubric.

The judge is asked at temperature 0 for one JSON object, `{"verdict": "pass" | "fail", "score":
0..1, "reason": "..."}` (as NVIDIA's data flywheel and ART's RULER judges answer). Everything sent
and the reply as it came are kept in the result's `Judgment`, which lands in the trace's outcome.
An endpoint that is down, an HTTP error, or an answer that does not parse is an `error` verdict:
never a pass.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import httpx

from tracewheel.agent.suites.checks.answer import json_in_answer
from tracewheel.agent.suites.checks.context import CheckContext, CheckResult
from tracewheel.agent.suites.spec import Judge, JudgeEndpoint
from tracewheel.core.trace import Judgment, Verdict

INSTRUCTIONS = (
    "You grade the work of an AI agent that used tools to do a task. Read the task, the tool calls "
    "the agent made and its final answer, and judge them against the rubric. Reply with only one "
    'JSON object, no other text: {{"verdict": "pass" or "fail", "score": a number from 0 to 1, '
    '"reason": "one sentence"}}.\n\nRubric:\n{rubric}'
)
PROMPT_SEPARATOR = "\n\n--- user ---\n\n"
_THINK = re.compile(r"^.*?</think>", re.DOTALL)
_VERDICTS = {"pass": Verdict.PASSED, "passed": Verdict.PASSED, "fail": Verdict.FAILED, "failed": Verdict.FAILED}
_MAX_ARGUMENTS = 300


def judge_user_turn(context: CheckContext) -> str:
    """The run as the judge reads it: the task, each tool call, the final page's URL, the answer."""
    calls = [
        f"{n}. {call.function.name}({call.function.arguments[:_MAX_ARGUMENTS]})"
        for n, call in enumerate((c for m in context.messages for c in m.tool_calls), start=1)
    ]
    parts = [f"Task:\n{context.task.prompt}", "Tool calls:\n" + ("\n".join(calls) or "(none)")]
    if context.page is not None and context.page.url:
        parts.append(f"Final page: {context.page.url}")
    parts.append(f"Final answer:\n{context.final_answer or '(none)'}")
    return "\n\n".join(parts)


def parse_judge_answer(text: str) -> tuple[Verdict, float, str]:
    """The verdict, score and reason in a judge's reply (reasoning before `</think>` skipped).

    Raises:
        ValueError: no JSON object, or a verdict other than pass/fail, or a score outside [0, 1].
    """
    document = json_in_answer(_THINK.sub("", text).strip())
    if not isinstance(document, dict):
        raise ValueError("the answer is not a JSON object")
    verdict = _VERDICTS.get(str(document.get("verdict", "")).strip().casefold())
    if verdict is None:
        raise ValueError(f"verdict {document.get('verdict')!r} is neither pass nor fail")
    score = document.get("score", 1.0 if verdict == Verdict.PASSED else 0.0)
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        raise ValueError(f"score {score!r} is not a number from 0 to 1")
    return verdict, float(score), str(document.get("reason", ""))


def _endpoint(spec: Judge, context: CheckContext) -> tuple[JudgeEndpoint, str, str]:
    """The endpoint, its base URL and API key.

    Raises:
        ValueError: no endpoint, or its key's environment variable is not set.
    """
    endpoint = spec.endpoint or context.judge
    if endpoint is None:
        raise ValueError("no judge endpoint: give the check an `endpoint` or the suite a `judge`")
    base_url = endpoint.base_url or (context.inference.base_url if context.inference else "")
    if not base_url:
        raise ValueError("the judge has no base_url and the agent's inference server is not known")
    api_key = context.inference.api_key if context.inference and not endpoint.base_url else "EMPTY"
    if endpoint.api_key_env:
        if endpoint.api_key_env not in os.environ:
            raise ValueError(f"the judge's API key variable {endpoint.api_key_env} is not set in the agent")
        api_key = os.environ[endpoint.api_key_env]
    return endpoint, base_url.rstrip("/"), api_key


async def _ask(http: httpx.AsyncClient, url: str, api_key: str, body: dict[str, Any], timeout_s: float) -> str:
    """The reply's content.

    Raises:
        httpx.HTTPError: the endpoint did not answer, or answered with an error status.
        ValueError: the response is not a chat completion with content.
    """
    headers = {"authorization": f"Bearer {api_key}"}
    response = await http.post(f"{url}/chat/completions", json=body, headers=headers, timeout=timeout_s)
    response.raise_for_status()
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a chat completion ({type(exc).__name__}: {exc})") from None
    if not isinstance(content, str):
        raise ValueError("the reply has no text content")
    return content


async def check_judge(spec: Judge, context: CheckContext) -> CheckResult:
    """Asks the judge; its verdict (and `min_score`) decides. Any failure to get a verdict is an error."""
    try:
        endpoint, base_url, api_key = _endpoint(spec, context)
    except ValueError as exc:
        return CheckResult.error(f"judge: {exc}")
    system, user = INSTRUCTIONS.format(rubric=spec.rubric), judge_user_turn(context)
    record = Judgment(model=endpoint.model, base_url=base_url, prompt=system + PROMPT_SEPARATOR + user)
    body = {
        "model": endpoint.model,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        "temperature": 0,
        "max_tokens": endpoint.max_tokens,
    }
    try:
        answer = await _ask(context.http, base_url, api_key, body, endpoint.timeout_s)
    except (httpx.HTTPError, ValueError) as exc:
        reason = f"judge {endpoint.model} at {base_url} did not answer: {type(exc).__name__}: {exc}"
        return CheckResult.error(reason, (record.model_copy(update={"verdict": Verdict.ERROR, "reason": reason}),))
    record = record.model_copy(update={"answer": answer})
    try:
        verdict, score, why = parse_judge_answer(answer)
    except ValueError as exc:
        reason = f"judge {endpoint.model}'s answer does not parse: {exc}"
        return CheckResult.error(reason, (record.model_copy(update={"verdict": Verdict.ERROR, "reason": reason}),))
    if verdict == Verdict.PASSED and spec.min_score is not None and score < spec.min_score:
        verdict, why = Verdict.FAILED, f"{why} (score {score:g} below {spec.min_score:g})"
    record = record.model_copy(update={"verdict": verdict, "score": score, "reason": why})
    return CheckResult(verdict, f"judge {endpoint.model}: {why}", score, (record,))
