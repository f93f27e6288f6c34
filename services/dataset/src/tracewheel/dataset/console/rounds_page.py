"""The rounds page (`/console`): every round's build, job, evaluation and deployment, live.

| path | serves |
|---|---|
| `/console` | the timeline, newest first, and held-out success per round as a chart |
| `/console/fragment/rounds` | the same section alone (what the page re-fetches when told) |
| `/console/events` | server-sent events: `changed` whenever builds, jobs, progress or deployments move |

Builds come from the store; jobs and their progress from the trainer, deployment decisions from
the inference service. A peer that is not configured or does not answer leaves its part of each
round empty and a notice on the page (the page answers 503, the fragment 200 so it still swaps in).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from sse_starlette import EventSourceResponse

from tracewheel.dataset.console.chart import Series, line_chart
from tracewheel.dataset.console.context import ConsoleContext
from tracewheel.dataset.console.live import SharedLook, change_events
from tracewheel.dataset.console.peers import PEER_DOWN
from tracewheel.dataset.console.rounds import Timeline, digest, join_rounds
from tracewheel.dataset.records import BuildRecord
from tracewheel.v1 import events_pb2, inference_pb2, trainer_pb2


@dataclass
class RoundSources:
    """What the rounds are made of, as fetched now; None: that peer could not be asked."""

    builds: list[BuildRecord]
    jobs: list[trainer_pb2.Job] | None = None
    deployments: list[inference_pb2.Deployment] | None = None
    progress: dict[str, events_pb2.TrainingProgress] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def timeline(self) -> Timeline:
        return join_rounds(self.builds, self.jobs, self.deployments, self.progress, self.notices)

    def digest(self) -> str:
        return digest(self.builds, self.jobs, self.deployments, self.progress, self.notices)


async def fetch_round_sources(ctx: ConsoleContext) -> RoundSources:
    """Builds from the store, jobs (with progress) from the trainer, decisions from the inference service."""
    sources = RoundSources(await asyncio.to_thread(ctx.store.list_builds, with_traces=False))

    async def jobs() -> None:
        try:
            sources.jobs = await ctx.peers.list_jobs()
            sources.progress = await ctx.peers.running_progress(sources.jobs)
        except PEER_DOWN as exc:
            sources.notices.append(f"Jobs and evaluations are not shown: {exc}")

    async def deployments() -> None:
        try:
            sources.deployments = await ctx.peers.list_deployments()
        except PEER_DOWN as exc:
            sources.notices.append(f"Deployment decisions are not shown: {exc}")

    await asyncio.gather(jobs(), deployments())
    sources.notices.sort()  # the same order whichever peer answered first
    return sources


def rounds_context(sources: RoundSources) -> dict[str, Any]:
    """The template's variables: the timeline, its chart and the notices."""
    timeline = sources.timeline()
    adapters, compared = timeline.success_points()
    chart = line_chart(
        [Series("adapter", adapters), Series("compared with", compared)],
        title="Held-out success per round",
        x_label="round",
        y_range=(0.0, 1.0),
        percent=True,
    )
    return {
        "timeline": timeline,
        "chart": chart,
        "notices": timeline.notices,
        "jobs_known": sources.jobs is not None,
        "decisions_known": sources.deployments is not None,
        "percent": _percent,
        "when": _when,
    }


def _percent(rate: float) -> str:
    return f"{rate:.0%}"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def add_routes(app: FastAPI, ctx: ConsoleContext) -> None:
    """Adds the rounds page, its fragment and the console's event stream to `app`."""

    @app.get("/console", response_class=HTMLResponse, include_in_schema=False)
    async def rounds_page(request: Request) -> HTMLResponse:
        sources = await fetch_round_sources(ctx)
        status = 503 if sources.notices else 200
        return ctx.render(request, "console/rounds.html", rounds_context(sources), status)

    @app.get("/console/fragment/rounds", response_class=HTMLResponse, include_in_schema=False)
    async def rounds_fragment(request: Request) -> HTMLResponse:
        sources = await fetch_round_sources(ctx)
        return ctx.render(request, "console/rounds_fragment.html", rounds_context(sources))

    async def fingerprint() -> str:
        return (await fetch_round_sources(ctx)).digest()

    look = SharedLook(fingerprint)

    @app.get("/console/events", include_in_schema=False)
    async def console_events() -> EventSourceResponse:
        return change_events(look, ctx.stopping)
