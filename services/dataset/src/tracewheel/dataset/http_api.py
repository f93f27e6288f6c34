"""REST API of the dataset service (FastAPI): traces, curation, edits, builds.

| method and path | does |
|---|---|
| `GET /api/traces` | list; filters as `TraceQuery` fields, plus `page_size` / `page_token` |
| `GET /api/traces/{id}` | one stored trace (current revision) |
| `POST /api/traces/{id}/curate` | `{status, reason, base_revision}` |
| `POST /api/traces/{id}/edit` | `{base_revision, trace}`: 409 when `base_revision` is stale |
| `GET /api/traces/{id}/revisions` | the revision history, oldest first |
| `POST /api/traces/{id}/messages/{index}` | `{base_revision, content}` or `{base_revision, reasoning_content}` |
| `DELETE /api/traces/{id}/messages/{index}?base_revision=N` | deletes that turn (and what goes with it) |
| `POST /api/traces/{id}/strip-guidance` | `{base_revision}` |
| `POST /api/traces/{id}/tags` | `{add, remove}` |
| `POST /api/traces/{id}/notes` | `{notes}` |
| `GET /api/counts` | traces per curation status under the list filters (status ignored) |
| `POST /api/builds` | `{force}` (default true: a person asked for it); answers the build and whether it is new |
| `GET /api/datasets` | every build, newest first |
| `GET /health` | `{"status": "ok"}`, open to anyone |

Every edit takes the revision it was based on and answers 409 when it is stale; edits are
validated exactly like ingest (problems name the message index).

Errors: a `TracewheelError` answers its `http_status` with `{"error": message}`.
The curation web UI (`ui.py`) is served by the same app at `/`.

With `security` (`tracewheel.core.http_security`), every route but /health, /login and /static
needs `Authorization: Bearer <token>` or a UI session; bodies over the limit are a 413, and
fields have limits of their own (400 naming the limit).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from tracewheel.core.errors import InvalidArgument, TracewheelError
from tracewheel.core.http_security import HttpGuard, HttpSecurity
from tracewheel.core.metrics import instrument
from tracewheel.core.trace import Verdict
from tracewheel.dataset.console import ConsoleConfig
from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.records import BuildRecord, StoredTrace, TraceQuery
from tracewheel.dataset.server import Build
from tracewheel.dataset.signin import SIGN_IN_PATH
from tracewheel.dataset.store import TraceStore
from tracewheel.dataset.ui import add_ui_routes

OPEN_PATHS = ("/health", SIGN_IN_PATH, "/static/")
"""What the guard serves without a token or session: health, the sign-in page and its CSS and script."""
MAX_REASON_CHARS = 2000
MAX_NOTES_CHARS = 20_000
MAX_TAGS = 50
MAX_TAG_CHARS = 100
Tag = Annotated[str, Field(max_length=MAX_TAG_CHARS)]
# revisions, indexes and page sizes fit a SQL BIGINT; a larger number is a 400, not a driver overflow (500)
Revision = Annotated[int, Field(ge=0, le=2**63 - 1)]
RevisionQuery = Annotated[int, Query(ge=0, le=2**63 - 1)]
Index = Annotated[int, PathParam(ge=0, le=2**31 - 1)]


class CurateBody(BaseModel):
    status: CurationStatus
    reason: str = Field(default="", max_length=MAX_REASON_CHARS)
    base_revision: Revision | None = None


class EditBody(BaseModel):
    base_revision: Revision
    trace: dict[str, Any]


MessageField = Literal["content", "reasoning_content"]


class MessageEditBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_revision: Revision
    content: str | None = None
    reasoning_content: str | None = None

    def field(self) -> tuple[MessageField, str | None]:
        """The one field this edit sets and its new text.

        Raises:
            InvalidArgument: neither or both fields are given.
        """
        given = self.model_fields_set - {"base_revision"}
        if given == {"content"}:
            return "content", self.content
        if given == {"reasoning_content"}:
            return "reasoning_content", self.reasoning_content
        raise InvalidArgument("body: give exactly one of content or reasoning_content")


class RevisionBody(BaseModel):
    base_revision: Revision


class TagsBody(BaseModel):
    add: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    remove: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)


class NotesBody(BaseModel):
    notes: str = Field(max_length=MAX_NOTES_CHARS)


class BuildBody(BaseModel):
    force: bool = True


def _stored_json(stored: StoredTrace) -> dict[str, Any]:
    return stored.model_dump(mode="json")


def _build_json(record: BuildRecord) -> dict[str, Any]:
    return record.model_dump(mode="json")


def create_app(
    store: TraceStore,
    build: Build,
    attachments_dir: Path | None = None,
    security: HttpSecurity | None = None,
    console: ConsoleConfig | None = None,
) -> FastAPI:
    """The REST app and curation UI over a store and the service's build action (the one gRPC uses too).

    `attachments_dir` is the gateway's attachments directory: screenshots under it are shown
    and served at `/attachments/{path}`; nothing else is. `console` connects the console's pages
    to the other services and folders (default: none). `security` guards the app (token or
    session, Host and Origin, body size) and adds the sign-in page.
    """
    app = FastAPI(title="tracewheel dataset")
    if security is not None:
        app.add_middleware(HttpGuard, security=security, error_body=lambda _status, message: {"error": message})
    instrument(app, "dataset")  # after the guard, so its refusals are counted

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(TracewheelError)
    async def _domain_error(_request: Request, exc: TracewheelError) -> JSONResponse:
        return JSONResponse(status_code=exc.http_status, content={"error": str(exc)})

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return JSONResponse(status_code=400, content={"error": f"invalid request: {problems}"})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # a body that is not JSON, an unknown path or method: the same error shape as every other refusal
        return JSONResponse(status_code=exc.status_code, content={"error": str(exc.detail)}, headers=exc.headers)

    _add_trace_routes(app, store)
    _add_edit_routes(app, store)
    _add_build_routes(app, store, build)
    add_ui_routes(app, store, attachments_dir, security, console)
    return app


def _trace_filters(
    suite: str | None = None,
    task_id: str | None = None,
    model: str | None = None,
    verdict: Verdict | None = None,
    tag: str | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
) -> TraceQuery:
    """The query parameters that filter traces, shared by /api/traces and /api/counts."""
    return TraceQuery(
        suite=suite,
        task_id=task_id,
        model=model,
        verdict=verdict,
        tag=tag,
        created_from=created_from,
        created_before=created_before,
    )


TraceFilters = Annotated[TraceQuery, Depends(_trace_filters)]


def _add_trace_routes(app: FastAPI, store: TraceStore) -> None:
    @app.get("/api/traces")
    def list_traces(
        filters: TraceFilters,
        status: CurationStatus | None = None,
        page_size: int = 50,
        page_token: str = "",
    ) -> dict[str, Any]:
        query = filters.model_copy(update={"status": status})
        page = store.list_traces(query, page_size, page_token)
        return {"traces": [_stored_json(s) for s in page.traces], "next_page_token": page.next_page_token}

    @app.get("/api/traces/{trace_id}")
    def get_trace(trace_id: str) -> dict[str, Any]:
        return _stored_json(store.get(trace_id))

    @app.post("/api/traces/{trace_id}/curate")
    def curate(trace_id: str, body: CurateBody) -> dict[str, Any]:
        return _stored_json(store.set_status(trace_id, body.status, body.reason, body.base_revision))

    @app.post("/api/traces/{trace_id}/edit")
    def edit(trace_id: str, body: EditBody) -> dict[str, Any]:
        return _stored_json(store.edit(trace_id, body.base_revision, body.trace))


def _add_edit_routes(app: FastAPI, store: TraceStore) -> None:
    @app.get("/api/traces/{trace_id}/revisions")
    def revisions(trace_id: str) -> dict[str, Any]:
        return {"revisions": [r.model_dump(mode="json") for r in store.revisions(trace_id)]}

    @app.post("/api/traces/{trace_id}/messages/{index}")
    def edit_message(trace_id: str, index: Index, body: MessageEditBody) -> dict[str, Any]:
        field, text = body.field()
        return _stored_json(store.edit_message(trace_id, body.base_revision, index, text, field))

    @app.delete("/api/traces/{trace_id}/messages/{index}")
    def delete_turn(trace_id: str, index: Index, base_revision: RevisionQuery) -> dict[str, Any]:
        return _stored_json(store.delete_turn(trace_id, base_revision, index))

    @app.post("/api/traces/{trace_id}/strip-guidance")
    def strip_guidance(trace_id: str, body: RevisionBody) -> dict[str, Any]:
        return _stored_json(store.strip_guidance(trace_id, body.base_revision))

    @app.post("/api/traces/{trace_id}/tags")
    def tags(trace_id: str, body: TagsBody) -> dict[str, Any]:
        stored = store.add_tags(trace_id, body.add) if body.add else store.get(trace_id)
        if body.remove:
            stored = store.remove_tags(trace_id, body.remove)
        return _stored_json(stored)

    @app.post("/api/traces/{trace_id}/notes")
    def notes(trace_id: str, body: NotesBody) -> dict[str, Any]:
        return _stored_json(store.set_notes(trace_id, body.notes))

    @app.get("/api/counts")
    def counts(query: TraceFilters) -> dict[str, int]:
        return {str(status): n for status, n in store.count_by_status(query).items()}


def _add_build_routes(app: FastAPI, store: TraceStore, build: Build) -> None:
    @app.post("/api/builds")
    async def create_build(body: BuildBody | None = None) -> dict[str, Any]:
        result = await build(force=(body or BuildBody()).force)
        return {
            "created": result.created,
            "build": _build_json(result.record),
            "dropped": [row.model_dump() for row in result.dropped],
        }

    @app.get("/api/datasets")
    def list_datasets() -> dict[str, Any]:
        return {"datasets": [_build_json(record) for record in store.list_builds()]}
