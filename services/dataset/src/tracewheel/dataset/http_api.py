"""REST API of the dataset service (FastAPI): traces, curation, edits, builds.

| method and path | does |
|---|---|
| `GET /api/traces` | list; filters as `TraceQuery` fields, plus `page_size` / `page_token` |
| `GET /api/traces/{id}` | one stored trace (current revision) |
| `POST /api/traces/{id}/curate` | `{status, reason, base_revision}` |
| `POST /api/traces/{id}/edit` | `{base_revision, trace}`: 409 when `base_revision` is stale |
| `POST /api/builds` | `{force}` (default true: a person asked for it); answers the build and whether it is new |
| `GET /api/datasets` | every build, newest first |

Errors: a `TracewheelError` answers its `http_status` with `{"error": message}`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tracewheel.core.errors import TracewheelError
from tracewheel.core.trace import Verdict
from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.records import BuildRecord, StoredTrace, TraceQuery
from tracewheel.dataset.server import Build
from tracewheel.dataset.store import TraceStore


class CurateBody(BaseModel):
    status: CurationStatus
    reason: str = ""
    base_revision: int | None = None


class EditBody(BaseModel):
    base_revision: int
    trace: dict[str, Any]


class BuildBody(BaseModel):
    force: bool = True


def _stored_json(stored: StoredTrace) -> dict[str, Any]:
    return stored.model_dump(mode="json")


def _build_json(record: BuildRecord) -> dict[str, Any]:
    return record.model_dump(mode="json")


def create_app(store: TraceStore, build: Build) -> FastAPI:
    """The REST app over a store and the service's build action (the one gRPC uses too)."""
    app = FastAPI(title="tracewheel dataset")

    @app.exception_handler(TracewheelError)
    async def _domain_error(_request: Request, exc: TracewheelError) -> JSONResponse:
        return JSONResponse(status_code=exc.http_status, content={"error": str(exc)})

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return JSONResponse(status_code=400, content={"error": f"invalid request: {problems}"})

    _add_trace_routes(app, store)
    _add_build_routes(app, store, build)
    return app


def _add_trace_routes(app: FastAPI, store: TraceStore) -> None:
    @app.get("/api/traces")
    def list_traces(
        status: CurationStatus | None = None,
        suite: str | None = None,
        task_id: str | None = None,
        model: str | None = None,
        verdict: Verdict | None = None,
        tag: str | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = 50,
        page_token: str = "",
    ) -> dict[str, Any]:
        query = TraceQuery(
            status=status,
            suite=suite,
            task_id=task_id,
            model=model,
            verdict=verdict,
            tag=tag,
            created_from=created_from,
            created_before=created_before,
        )
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
