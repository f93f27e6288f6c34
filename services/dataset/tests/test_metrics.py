"""The dataset service's /metrics: REST requests by route, refusals, and traces ingested or refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from tracewheel.core.errors import TraceValidationError
from tracewheel.core.http_security import HttpSecurity
from tracewheel.core.http_server import HttpServer
from tracewheel.dataset.config import DatasetSettings
from tracewheel.dataset.events import DatasetEvents
from tracewheel.dataset.http_api import OPEN_PATHS, create_app
from tracewheel.dataset.signin import SIGN_IN_PATH
from tracewheel.dataset.store import TraceStore

from .conftest import TraceFactory

TOKEN = "dataset-metrics-token"
BEARER = {"authorization": f"Bearer {TOKEN}"}


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_rest_requests_and_refusals_are_counted(store: TraceStore, tmp_path: Path) -> None:
    settings = DatasetSettings(auth_token=TOKEN, TRACEWHEEL_HOME=tmp_path)
    security = HttpSecurity.from_settings(
        settings.auth_token, settings, "127.0.0.1", "TW_DATASET_", open_paths=OPEN_PATHS, sign_in_path=SIGN_IN_PATH
    )

    async def build(*, force: bool) -> Any:
        raise AssertionError("not built here")

    server = HttpServer(create_app(store, build, None, security), "127.0.0.1", 0)
    await server.start()
    route = {"service": "dataset", "method": "GET", "route": "/api/traces/{trace_id}"}
    found_before = _value("tracewheel_http_requests_total", **route, status="404")
    refused_before = _value("tracewheel_http_requests_total", **route, status="401")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            assert (await client.get("/api/traces/missing", headers=BEARER)).status_code == 404
            assert (await client.get("/api/traces/missing")).status_code == 401
            scraped = await client.get("/metrics", headers=BEARER)
    finally:
        await server.stop()
    assert scraped.status_code == 200
    assert _value("tracewheel_http_requests_total", **route, status="404") == found_before + 1
    assert _value("tracewheel_http_requests_total", **route, status="401") == refused_before + 1


async def test_ingest_counts_traces_stored_and_refused(store: TraceStore, make_trace: TraceFactory) -> None:
    events = DatasetEvents(None, store, None, threshold=10**6, debounce_s=60.0)  # type: ignore[arg-type]
    ingested = _value("tracewheel_traces_ingested_total", path="grpc")
    refused = _value("tracewheel_traces_refused_total", path="grpc")
    await events.ingest(make_trace("metrics-1"))
    with pytest.raises(TraceValidationError):
        await events.ingest({"id": "metrics-2", "messages": "not a list"})  # type: ignore[arg-type]
    assert _value("tracewheel_traces_ingested_total", path="grpc") == ingested + 1
    assert _value("tracewheel_traces_refused_total", path="grpc") == refused + 1
