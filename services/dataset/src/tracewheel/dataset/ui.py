"""The curation web UI: server-rendered pages over the store; every action goes through the REST API.

Pages are Jinja2 templates (autoescaped: traces hold arbitrary HTML from web pages) with one
CSS and one JS file; no build step, nothing loaded from outside. The Content-Security-Policy
allows only this origin's script and styles, so an escaping slip still runs nothing.

| path | shows |
|---|---|
| `/` | the trace list: filters, counts by status, pagination |
| `/traces/{id}` | one trace; the list filters ride along in the query string for `j` / `k` |
| `/attachments/{path}` | a file under the attachments directory (images inline, the rest as text) |
| `/console/...` | the flywheel console (`tracewheel.dataset.console`) |

With a token configured, pages need a session (`signin.py`); each page hands its session's CSRF
token to the script in a meta tag, and the script sends it with every change.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from tracewheel.core.errors import NotFound
from tracewheel.core.http_security import HttpSecurity
from tracewheel.core.trace import Verdict
from tracewheel.dataset.attachments import IMAGE_TYPES, resolve_attachment
from tracewheel.dataset.console import ConsoleConfig, ConsoleContext, add_console_routes
from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.records import TraceQuery
from tracewheel.dataset.signin import add_sign_in_routes
from tracewheel.dataset.store import TraceStore
from tracewheel.dataset.trace_view import message_views, pretty_json

PAGE_SIZE = 50
FILTERS = ("status", "suite", "task_id", "model", "verdict", "tag", "created_from", "created_before")
_HERE = Path(__file__).parent
_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'"


def _filters(request: Request) -> dict[str, str]:
    """The list filters in the query string (empty fields dropped, as a form submits them)."""
    return {name: value for name in FILTERS if (value := request.query_params.get(name, "").strip())}


def _query(filters: dict[str, str]) -> TraceQuery:
    return TraceQuery.model_validate(filters)


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def _render(
    templates: Jinja2Templates, request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """The page `name` with the session's CSRF token, under the pages' Content-Security-Policy."""
    csrf_token = request.scope.get("state", {}).get("csrf_token", "")  # set by the guard on a session
    context = {**context, "csrf_token": csrf_token, "signed_in": bool(csrf_token)}
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Content-Security-Policy"] = _CSP
    return response


def _listing(store: TraceStore, filters: dict[str, str], query: TraceQuery, page_token: str) -> dict[str, Any]:
    """The list page's traces, counts by status and next page's URL."""
    listed = store.list_summaries(query, PAGE_SIZE, page_token)  # the columns shown, no trace parsed
    counts = store.count_by_status(query)
    next_url = f"/?{urlencode({**filters, 'page_token': listed.next_page_token})}" if listed.next_page_token else ""
    return {
        "traces": listed.traces,
        "counts": {str(s): n for s, n in counts.items()},
        "total": sum(counts.values()),
        "next_url": next_url,
        "first_page": not page_token,
    }


def _trace_context(
    store: TraceStore, trace_id: str, filters: dict[str, str], query: TraceQuery, attachments_dir: Path | None
) -> dict[str, Any]:
    """The trace page: the trace, its revisions, and its neighbours in the list it was opened from.

    Raises:
        NotFound: no such trace.
    """
    stored = store.get(trace_id)
    previous, following = store.neighbours(trace_id, query)
    suffix = f"?{urlencode(filters)}" if filters else ""
    trace = stored.trace
    return {
        "stored": stored,
        "trace": trace,
        "messages": message_views(trace, attachments_dir),
        "revisions": store.revisions(trace_id),
        "tools_json": pretty_json(trace.model_dump_json(include={"tools"})),
        "metadata_json": pretty_json(trace.metadata.model_dump_json()),
        "list_url": f"/{suffix}",
        "previous_url": f"/traces/{previous}{suffix}" if previous else "",
        "next_url": f"/traces/{following}{suffix}" if following else "",
    }


def add_ui_routes(
    app: FastAPI,
    store: TraceStore,
    attachments_dir: Path | None,
    security: HttpSecurity | None = None,
    console: ConsoleConfig | None = None,
) -> None:
    """Adds the pages, their static files, the attachments route, the console's pages (`console`:
    its peers and folders; default none) and, with `security`, signing in to `app`."""
    templates = Jinja2Templates(directory=_HERE / "templates")
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    if security is not None:
        add_sign_in_routes(app, security, templates, _CSP)

    page = functools.partial(_render, templates)
    sources = console or ConsoleConfig()
    console_context = ConsoleContext(
        store, sources.peers, sources.artifacts_dir, sources.reports_dir, page, sources.stopping
    )
    add_console_routes(app, console_context)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def trace_list(request: Request, page_token: str = "") -> HTMLResponse:
        filters = _filters(request)
        context: dict[str, Any] = {
            "filters": filters,
            "statuses": list(CurationStatus),
            "verdicts": list(Verdict),
            "filter_qs": urlencode(filters),
            "traces": [],
            "counts": {},
            "next_url": "",
            "error": "",
        }
        try:
            query = _query(filters)
        except ValidationError as exc:
            return page(request, "list.html", {**context, "error": _validation_message(exc)}, 400)
        context.update(_listing(store, filters, query, page_token))
        return page(request, "list.html", context)

    @app.get("/traces/{trace_id}", response_class=HTMLResponse, include_in_schema=False)
    def trace_page(request: Request, trace_id: str) -> HTMLResponse:
        filters = _filters(request)
        try:
            query = _query(filters)
        except ValidationError:
            filters, query = {}, TraceQuery()
        return page(request, "trace.html", _trace_context(store, trace_id, filters, query, attachments_dir))

    @app.get("/attachments/{path:path}", include_in_schema=False)
    def attachment(path: str) -> Response:
        if attachments_dir is None:
            raise NotFound("no attachments directory is configured (TW_DATASET_ATTACHMENTS_DIR)")
        target = resolve_attachment(attachments_dir, path)
        media_type = IMAGE_TYPES.get(target.suffix.lower(), "text/plain; charset=utf-8")
        headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'"}
        return FileResponse(target, media_type=media_type, headers=headers)
