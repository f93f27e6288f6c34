"""Prometheus metrics: the request middleware (route templates, guard refusals counted), /metrics behind
the token, the plain-ASGI wrapping the gateway uses and the metrics listener of gRPC-only services."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

from tracewheel.core.http_security import HttpGuard, HttpSecurity
from tracewheel.core.http_server import HttpServer
from tracewheel.core.metrics import MetricsApp, instrument, instrument_asgi

TOKEN = "metrics-test-token"
BEARER = {"authorization": f"Bearer {TOKEN}"}


def _requests(service: str, method: str, route: str, status: int) -> float:
    labels = {"service": service, "method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("tracewheel_http_requests_total", labels) or 0.0


def _guarded_app() -> FastAPI:
    app = FastAPI()
    security = HttpSecurity(token=TOKEN, hosts=frozenset({"testserver"}))
    app.add_middleware(HttpGuard, security=security, error_body=lambda _status, message: {"error": message})
    instrument(app, "core-test")

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    return app


async def test_requests_are_counted_by_route_template_and_status_refusals_included() -> None:
    transport = httpx.ASGITransport(app=_guarded_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        ok_before = _requests("core-test", "GET", "/items/{item_id}", 200)
        refused_before = _requests("core-test", "GET", "/items/{item_id}", 401)
        assert (await client.get("/items/a", headers=BEARER)).status_code == 200
        assert (await client.get("/items/b")).status_code == 401
        assert (await client.get("/nowhere", headers=BEARER)).status_code == 404
        assert _requests("core-test", "GET", "/items/{item_id}", 200) == ok_before + 1
        assert _requests("core-test", "GET", "/items/{item_id}", 401) == refused_before + 1
        assert _requests("core-test", "GET", "<unmatched>", 404) >= 1
        assert (await client.get("/metrics")).status_code == 401  # behind the token like every other route
        scraped = await client.get("/metrics", headers=BEARER)
    assert scraped.status_code == 200
    assert 'tracewheel_http_requests_total{method="GET",route="/items/{item_id}",service="core-test",status="200"}' in (
        scraped.text
    )
    assert "tracewheel_http_request_duration_seconds_bucket" in scraped.text


async def test_plain_asgi_app_gets_metrics_and_known_routes() -> None:
    async def endpoint(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        await send({"type": "http.response.start", "status": 204, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]

    app = instrument_asgi(endpoint, "asgi-test", frozenset({"/mcp"}), TOKEN)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.post("/mcp")).status_code == 204
        assert (await client.post("/random/path")).status_code == 204
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers=BEARER)).status_code == 200
    assert _requests("asgi-test", "POST", "/mcp", 204) == 1
    assert _requests("asgi-test", "POST", "<unmatched>", 204) == 1
    assert _requests("asgi-test", "GET", "/metrics", 401) == 1


async def test_metrics_listener_serves_only_metrics() -> None:
    server = HttpServer(MetricsApp(None), "127.0.0.1", 0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            scraped = await client.get("/metrics")
            other = await client.get("/")
    finally:
        await server.stop()
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert "# TYPE tracewheel_http_requests_total counter" in scraped.text
    assert other.status_code == 404
