"""What every console page module is given, and the one place that registers them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from tracewheel.dataset.console.peers import Peers
from tracewheel.dataset.store import TraceStore

Render = Callable[..., HTMLResponse]
"""`page(request, "console/x.html", context, status_code=200)`: a template under the pages' CSP."""


@dataclass(frozen=True)
class ConsoleConfig:
    """What the service hands the console (`create_app(..., console=...)`); the default has no peers.

    Attributes:
        peers: gRPC clients to the trainer, the inference service and the agent.
        artifacts_dir: where the builds' folders are; None: not on this host.
        reports_dir: where evaluation reports are written; None: none listed.
        stopping: set by the service before its HTTP server exits: live event streams end.
    """

    peers: Peers = field(default_factory=lambda: Peers({}))
    artifacts_dir: Path | None = None
    reports_dir: Path | None = None
    stopping: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class ConsoleContext:
    """The console's sources.

    Attributes:
        store: the trace store (traces, builds).
        peers: gRPC clients to the trainer, the inference service and the agent.
        artifacts_dir: where the builds' folders are (manifest, rows); None: not on this host.
        reports_dir: where evaluation reports are written; the console serves files under it only.
        page: renders a template (set by the curation UI, which owns the templates and the CSP).
        stopping: set when the service stops: live event streams end (ConsoleConfig.stopping).
    """

    store: TraceStore
    peers: Peers
    artifacts_dir: Path | None
    reports_dir: Path | None
    page: Render
    stopping: threading.Event = field(default_factory=threading.Event)

    def render(self, request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
        return self.page(request, name, {**context, "section": name.split("/")[-1].split(".")[0]}, status_code)


def add_console_routes(app: FastAPI, ctx: ConsoleContext) -> None:
    """Adds every console page and its JSON feeds to `app` (each page module adds its own)."""
    from tracewheel.dataset.console import datasets, deployments, jobs, reports, rounds_page, suites

    datasets.add_routes(app, ctx)
    suites.add_routes(app, ctx)
    reports.add_routes(app, ctx)
    rounds_page.add_routes(app, ctx)
    deployments.add_routes(app, ctx)
    jobs.add_routes(app, ctx)
