"""The console's jobs pages: the trainer's training jobs, one job's recipe and loss curves, cancelling.

| path | shows / does |
|---|---|
| `/console/jobs` | every job (ListJobs): state, dataset, when, a running job's step and loss, held-out success |
| `/console/fragment/jobs` | the list's table alone (re-fetched on the console's `changed` events) |
| `/console/jobs/{job_id}` | one job (GetJob): recipe, loss and eval-loss chart, evaluation, adapter |
| `/console/jobs/{job_id}/fragment` | the job page's live section alone |
| `POST /console/api/jobs/{job_id}/cancel` | cancels a queued job now, a running one at its next step (CancelJob) |

Everything comes from the trainer, which reads a job's curve from the `loss.jsonl` its training
appends to (trainer `loss_log.py`), so an open page of a running job follows its steps through
the console's event stream (`/console/events`). A trainer that is not configured or does not
answer leaves a notice (the pages answer 503); an unknown job is a 404 page.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from tracewheel.core.errors import NotFound
from tracewheel.dataset.console.context import ConsoleContext
from tracewheel.dataset.console.job_view import job_page_context, job_row
from tracewheel.dataset.console.peers import PEER_DOWN
from tracewheel.dataset.console.rounds import job_state_name as state_name
from tracewheel.v1 import trainer_pb2


async def _list_context(ctx: ConsoleContext) -> tuple[dict[str, Any], int]:
    """The jobs newest first with where the running ones stand; a trainer down: none and a notice."""
    try:
        jobs = await ctx.peers.list_jobs()
        progress = await ctx.peers.running_progress(jobs)
    except PEER_DOWN as exc:
        return {"jobs": [], "peer_message": str(exc)}, 503
    rows = [job_row(job, progress.get(job.id)) for job in reversed(jobs)]  # the trainer lists oldest first
    return {"jobs": rows, "peer_message": ""}, 200


async def _job_context(ctx: ConsoleContext, job_id: str) -> tuple[dict[str, Any], int]:
    """One job's page variables and status: 404 for an unknown id, 503 with a notice when the trainer is down."""
    base: dict[str, Any] = {"job_id": job_id, "job": None, "missing": "", "peer_message": ""}
    try:
        detail = await ctx.peers.get_job(job_id)
    except NotFound as exc:
        return {**base, "missing": str(exc)}, 404
    except PEER_DOWN as exc:
        return {**base, "peer_message": str(exc)}, 503
    return {**base, **job_page_context(detail)}, 200


def _cancel_message(job: trainer_pb2.Job) -> str:
    if state_name(job.state) == "cancelled":
        return f"Job {job.id} is cancelled ({job.error or 'before it started'})."
    return f"Job {job.id} stops at its next step; it ends as cancelled and its checkpoints are kept."


def add_routes(app: FastAPI, ctx: ConsoleContext) -> None:
    """Adds the jobs pages, their fragments and the cancel action to `app`."""

    @app.get("/console/jobs", response_class=HTMLResponse, include_in_schema=False)
    async def jobs_page(request: Request) -> HTMLResponse:
        context, status = await _list_context(ctx)
        return ctx.render(request, "console/jobs.html", context, status)

    @app.get("/console/fragment/jobs", response_class=HTMLResponse, include_in_schema=False)
    async def jobs_fragment(request: Request) -> HTMLResponse:
        context, _status = await _list_context(ctx)  # 200 with the notice, so the section still swaps in
        return ctx.render(request, "console/jobs_fragment.html", context)

    @app.get("/console/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    async def job_page(request: Request, job_id: str) -> HTMLResponse:
        context, status = await _job_context(ctx, job_id)
        return ctx.render(request, "console/job.html", context, status)

    @app.get("/console/jobs/{job_id}/fragment", response_class=HTMLResponse, include_in_schema=False)
    async def job_fragment(request: Request, job_id: str) -> HTMLResponse:
        context, status = await _job_context(ctx, job_id)
        return ctx.render(request, "console/job_fragment.html", context, 404 if status == 404 else 200)

    @app.post("/console/api/jobs/{job_id}/cancel", include_in_schema=False)
    async def cancel_job(job_id: str) -> dict[str, str]:
        return {"message": _cancel_message(await ctx.peers.cancel_job(job_id))}
