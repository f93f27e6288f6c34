"""The OpenAI API's /metrics: behind the token, and requests, tokens and the queue gauge move."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from prometheus_client import REGISTRY

from tracewheel.core.chat import SERVING_TEMPLATE
from tracewheel.core.http_security import HttpSecurity
from tracewheel.core.http_server import HttpServer
from tracewheel.inference.config import InferenceSettings
from tracewheel.inference.openai_api import create_app
from tracewheel.inference.passthrough import UpstreamOptions, create_passthrough_app
from tracewheel.inference.runtime import build_state

TOKEN = "inference-metrics-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
CHAT = {"model": "agent", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "temperature": 0}


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_count_requests_refusals_and_tokens(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = InferenceSettings(
        model=str(tiny_model_dir), chat_template=SERVING_TEMPLATE, TRACEWHEEL_HOME=tmp_path, auth_token=TOKEN
    )
    state = await asyncio.to_thread(build_state, settings)
    security = HttpSecurity.from_settings(settings.auth_token, settings, settings.http_host, "TW_INFERENCE_")
    server = HttpServer(create_app(state, security), "127.0.0.1", 0)
    await server.start()
    route = {"service": "inference", "method": "POST", "route": "/v1/chat/completions"}
    ok_before = _value("tracewheel_http_requests_total", **route, status="200")
    refused_before = _value("tracewheel_http_requests_total", **route, status="401")
    tokens_before = _value("tracewheel_inference_generated_tokens_total")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=60) as client:
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 401
            assert (await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)).status_code == 200
            assert (await client.get("/metrics")).status_code == 401
            scraped = await client.get("/metrics", headers=AUTH)
    finally:
        await server.stop()
        state.engine.stop()
    assert scraped.status_code == 200
    assert _value("tracewheel_http_requests_total", **route, status="200") == ok_before + 1
    assert _value("tracewheel_http_requests_total", **route, status="401") == refused_before + 1
    assert _value("tracewheel_inference_generated_tokens_total") > tokens_before
    assert "tracewheel_inference_queue_depth" in scraped.text
    assert 'tracewheel_http_request_duration_seconds_count{method="POST",route="/v1/chat/completions"' in scraped.text


async def test_the_passthrough_app_has_metrics_too() -> None:
    app, upstream = create_passthrough_app(UpstreamOptions(upstream_url="http://127.0.0.1:9/v1"))
    route = {"service": "inference", "method": "GET", "route": "/health", "status": "200"}
    before = _value("tracewheel_http_requests_total", **route)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            assert (await client.get("/health")).status_code == 200
            scraped = await client.get("/metrics")
    finally:
        await upstream.aclose()
    assert scraped.status_code == 200
    assert _value("tracewheel_http_requests_total", **route) == before + 1
