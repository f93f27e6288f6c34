"""Judging a run against its task: the checker's verdict as a trace Outcome."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from tracewheel.agent.suites.checks import CheckContext, InferenceEndpoint, PageState, run_check
from tracewheel.agent.tasks import Task
from tracewheel.core import trace as core


def core_task(task: Task) -> core.Task:
    """The trace's record of a suite task."""
    return core.Task(suite=task.suite, task_id=task.task_id, prompt=task.prompt, split=task.split)


async def reset_site(site_url: str) -> None:
    """Clears the task site's orders (`POST /api/reset`).

    Raises:
        httpx.HTTPError: the site did not answer.
    """
    await reset_suite(f"{site_url.rstrip('/')}/api/reset")


async def reset_suite(reset_url: str) -> None:
    """POSTs a suite's `reset_url` (the shop's `/api/reset` clears its orders).

    Raises:
        httpx.HTTPError: the URL did not answer with a success.
    """
    async with httpx.AsyncClient() as client:
        (await client.post(reset_url)).raise_for_status()


async def judge(
    task: Task,
    outcome: core.Outcome,
    *,
    page: PageState | None = None,
    messages: Sequence[core.Message] = (),
    inference: InferenceEndpoint | None = None,
) -> core.Outcome:
    """`outcome` with the task checker's verdict, score, reason and judgments; errors stay errors,
    a task without a checker stays unchecked.

    Args:
        task: the task that ran.
        outcome: the run's outcome (its final answer).
        page: the final page, for end-state checks.
        messages: the run's conversation, for a judge.
        inference: the agent's inference server, a judge's default endpoint.
    """
    if outcome.verdict == core.Verdict.ERROR or task.check is None:
        return outcome
    async with httpx.AsyncClient() as http:
        context = CheckContext(
            task=task,
            final_answer=outcome.final_answer or "",
            http=http,
            page=page,
            messages=messages,
            inference=inference,
        )
        result = await run_check(task.check, context)
    detail = "; ".join(part for part in (outcome.detail, result.reason) if part)
    return outcome.model_copy(
        update={
            "verdict": result.verdict,
            "score": result.score,
            "detail": detail,
            "judgments": [*outcome.judgments, *result.judgments],
        }
    )
