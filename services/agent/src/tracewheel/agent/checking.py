"""Judging a run against its task: the checker's verdict as a trace Outcome."""

from __future__ import annotations

from typing import Any

import httpx

from tracewheel.agent.tasks import Task, check_task
from tracewheel.core import trace as core

FORM_TEMPLATES = frozenset({"order_form"})
"""Templates whose checker reads the site's `/api/state` (the orders placed)."""


def core_task(task: Task) -> core.Task:
    """The trace's record of a suite task."""
    return core.Task(suite=task.suite, task_id=task.task_id, prompt=task.prompt)


async def fetch_site_state(site_url: str, http: httpx.AsyncClient | None = None) -> dict[str, Any]:
    """The task site's `/api/state` (orders, for form checkers).

    Raises:
        httpx.HTTPError: the site did not answer.
    """
    if http is not None:
        response = await http.get(f"{site_url.rstrip('/')}/api/state")
    else:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{site_url.rstrip('/')}/api/state")
    response.raise_for_status()
    state: dict[str, Any] = response.json()
    return state


async def reset_site(site_url: str) -> None:
    """Clears the task site's orders (`POST /api/reset`).

    Raises:
        httpx.HTTPError: the site did not answer.
    """
    async with httpx.AsyncClient() as client:
        (await client.post(f"{site_url.rstrip('/')}/api/reset")).raise_for_status()


async def judge(task: Task, outcome: core.Outcome, site_url: str | None) -> core.Outcome:
    """`outcome` with the checker's verdict; errors stay errors, an unanswered run fails."""
    if outcome.verdict == core.Verdict.ERROR:
        return outcome
    state = await fetch_site_state(site_url) if site_url and task.template in FORM_TEMPLATES else {}
    verdict = check_task(task, outcome.final_answer or "", state)
    detail = "; ".join(part for part in (outcome.detail, verdict.reason) if part)
    return outcome.model_copy(
        update={
            "verdict": core.Verdict.PASSED if verdict.passed else core.Verdict.FAILED,
            "score": verdict.score,
            "detail": detail,
        }
    )
