"""The console's suite pages: the agent's registered suites, a suite's tasks, and one task's runs across models.

| path | shows |
|---|---|
| `/console/suites` | every registered suite (the agent's ListSuites): tasks per split, check kinds, load errors |
| `/console/suites/{name}` | its tasks (split, template, prompt) and a registered file's text |
| `/console/suites/{name}/tasks/{task_id}` | the task, and its runs by model: stored traces and evaluation results |

Evaluation results come from the gate decisions the inference service recorded (each decision keeps
the candidate's and the compared model's per-task results); their traces stay with the agent and are
linked at `/console/runs/{trace_id}`. Stored traces link to the curation page.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from tracewheel.core.errors import NotFound
from tracewheel.core.evaluation_proto import eval_result_from_proto
from tracewheel.dataset.console.context import ConsoleContext
from tracewheel.dataset.console.peers import PEER_DOWN
from tracewheel.dataset.console.task_runs import recorded_evaluations, runs_by_model
from tracewheel.dataset.records import TraceQuery
from tracewheel.v1 import inference_pb2

STORED_RUNS_SHOWN = 200
"""The newest stored traces of a task that its page lists."""


async def _evaluations(ctx: ConsoleContext) -> list[Any]:
    """Every evaluation the recorded gate decisions hold.

    Raises:
        Unavailable: the inference service is not configured or does not answer.
    """
    deployments: list[inference_pb2.Deployment] = await ctx.peers.list_deployments()
    decisions = [
        (
            d.adapter_name,
            eval_result_from_proto(d.candidate) if d.HasField("candidate") else None,
            eval_result_from_proto(d.compared_with) if d.HasField("compared_with") else None,
        )
        for d in deployments
    ]
    return recorded_evaluations(decisions)


def _stored_traces(ctx: ConsoleContext, task_id: str) -> tuple[list[Any], bool]:
    """The task's newest stored traces (any suite: the grouping keeps this suite's) and whether more exist."""
    listed = ctx.store.list_traces(TraceQuery(task_id=task_id), STORED_RUNS_SHOWN)
    return listed.traces, bool(listed.next_page_token)


def add_routes(app: FastAPI, ctx: ConsoleContext) -> None:
    """Adds the suite pages to `app`."""

    @app.get("/console/suites", response_class=HTMLResponse, include_in_schema=False)
    async def suites_page(request: Request) -> HTMLResponse:
        try:
            suites = await ctx.peers.list_suites()
        except PEER_DOWN as exc:
            return ctx.render(request, "console/suites.html", {"suites": [], "peer_message": str(exc)}, 503)
        return ctx.render(request, "console/suites.html", {"suites": suites, "peer_message": ""})

    @app.get("/console/suites/{name}", response_class=HTMLResponse, include_in_schema=False)
    async def suite_page(request: Request, name: str) -> HTMLResponse:
        try:
            info = await ctx.peers.get_suite(name)
        except PEER_DOWN as exc:
            context: dict[str, Any] = {"name": name, "suite": None, "tasks": [], "peer_message": str(exc)}
            return ctx.render(request, "console/suite.html", context, 503)
        context = {"name": name, "suite": info, "content": info.content, "tasks": info.tasks, "peer_message": ""}
        return ctx.render(request, "console/suite.html", context)

    @app.get("/console/suites/{name}/tasks/{task_id}", response_class=HTMLResponse, include_in_schema=False)
    async def task_page(request: Request, name: str, task_id: str) -> HTMLResponse:
        return await _task_page(ctx, request, name, task_id)


async def _task_page(ctx: ConsoleContext, request: Request, name: str, task_id: str) -> HTMLResponse:
    """The task (from the agent) and its runs by model; a peer that is down leaves a notice and the rest.

    Raises:
        NotFound: the agent answers and has no such suite or task.
    """
    notices: list[str] = []
    task = None
    try:
        info = await ctx.peers.get_suite(name)
        task = next((t for t in info.tasks if t.task_id == task_id), None)
        if task is None:
            raise NotFound(f"suite {name!r} has no task {task_id!r}")
    except PEER_DOWN as exc:
        notices.append(str(exc))
    try:
        evaluations = await _evaluations(ctx)
    except PEER_DOWN as exc:
        evaluations = []
        notices.append(f"evaluation runs are not shown: {exc}")
    stored, more = _stored_traces(ctx, task_id)
    context = {
        "name": name,
        "task_id": task_id,
        "task": task,
        "models": runs_by_model(name, task_id, stored, evaluations),
        "more_stored": more,
        "stored_shown": STORED_RUNS_SHOWN,
        "notices": notices,
    }
    return ctx.render(request, "console/task.html", context, 503 if notices else 200)
