"""The OpenAI API guarded and bounded: bearer token, bad input as 400s, body limits, disconnects, a full queue.

Each test serves the tiny model in-process (uvicorn on a free port) with one request decoded at a
time and one more allowed to wait, so the queue and the cancellations are visible in the engine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tracewheel.core.chat import SERVING_TEMPLATE
from tracewheel.core.http_security import HttpSecurity
from tracewheel.core.http_server import HttpServer
from tracewheel.inference.config import InferenceSettings
from tracewheel.inference.openai_api import ServingState, create_app
from tracewheel.inference.runtime import build_state

from .conftest import make_adapter

TOKEN = "inference-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
HI = [{"role": "user", "content": "hi"}]
LONG = {"model": "agent", "messages": HI, "max_tokens": 2000, "temperature": 0}  # minutes of decoding


@dataclass
class Served:
    state: ServingState
    url: str


@pytest.fixture
async def served(tiny_model_dir: Path, tmp_path: Path) -> AsyncIterator[Served]:
    settings = InferenceSettings(
        model=str(tiny_model_dir),
        chat_template=SERVING_TEMPLATE,
        TRACEWHEEL_HOME=tmp_path,
        auth_token=TOKEN,
        max_batch=1,
        max_waiting_requests=1,
        default_max_tokens=4,
    )
    state = await asyncio.to_thread(build_state, settings)
    security = HttpSecurity.from_settings(settings.auth_token, settings, settings.http_host, "TW_INFERENCE_")
    server = HttpServer(create_app(state, security), "127.0.0.1", 0)
    await server.start()
    try:
        yield Served(state, f"http://127.0.0.1:{server.port}")
    finally:
        await server.stop()
        state.engine.stop()


async def until(condition: Callable[[], bool], timeout_s: float = 30.0) -> float:
    """Waits for `condition`; returns the seconds it took."""
    started = time.perf_counter()
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)
    return time.perf_counter() - started


async def test_every_v1_route_needs_the_token_and_health_does_not(
    served: Served, tiny_model_dir: Path, tmp_path: Path
) -> None:
    adapter = str(make_adapter(tiny_model_dir, tmp_path / "a1", 1))
    routes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/v1/models", None),
        ("POST", "/v1/chat/completions", {"model": "agent", "messages": HI, "max_tokens": 2}),
        ("POST", "/v1/load_lora_adapter", {"lora_name": "a1", "lora_path": adapter}),
        ("POST", "/v1/unload_lora_adapter", {"lora_name": "a1"}),
    ]
    async with httpx.AsyncClient(base_url=served.url) as http:
        for method, path, body in routes:
            for headers in ({}, {"authorization": "Bearer wrong"}):
                refused = await http.request(method, path, json=body, headers=headers)
                assert refused.status_code == 401, (path, headers)
                assert refused.json()["error"]["type"] == "AuthenticationError"
            served_reply = await http.request(method, path, json=body, headers=AUTH)
            assert served_reply.status_code == 200, (path, served_reply.text)
        assert (await http.get("/health")).status_code == 200
    sdk = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await sdk.models.list()
    await sdk.close()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tool_choice": {"type": "function", "function": "browse"}}, 'expected {"type": "function"'),
        ({"chat_template_kwargs": {"tokenize": True}}, "chat_template_kwargs: tokenize is set by the server"),
        ({"seed": 2**70}, "seed"),
        ({"chat_template": "{% for i in range(10**9) %}x{% endfor %}"}, "TRUST_REQUEST_CHAT_TEMPLATE"),
        ({"chat_template_kwargs": {"chat_template": "{{ 1 }}"}}, "TRUST_REQUEST_CHAT_TEMPLATE"),
        ({"max_tokens": 9000}, "context is 8192 tokens; the prompt takes"),
    ],
)
async def test_bad_input_is_a_400_naming_it(served: Served, fields: dict[str, Any], message: str) -> None:
    tools = [{"type": "function", "function": {"name": "browse", "parameters": {"type": "object"}}}]
    body = {"model": "agent", "messages": HI, "max_tokens": 2, "tools": tools} | fields
    async with httpx.AsyncClient(base_url=served.url, headers=AUTH) as http:
        reply = await http.post("/v1/chat/completions", json=body)
    assert reply.status_code == 400, reply.text
    assert message in reply.json()["error"]["message"]
    if "max_tokens" in fields:
        assert "asks for 9000" in reply.json()["error"]["message"]


async def _health_latencies(http: httpx.AsyncClient, busy: asyncio.Task[Any]) -> list[float]:
    latencies = []
    while not busy.done():
        started = time.perf_counter()
        assert (await http.get("/health")).status_code == 200
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.01)
    return latencies


async def test_huge_requests_are_refused_while_health_answers_fast(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=60) as http:
        ten_mb = {"model": "agent", "messages": [{"role": "user", "content": "x" * 10_000_000}]}
        refused = await http.post("/v1/chat/completions", json=ten_mb)
        assert refused.status_code == 413 and "limit of 8388608 bytes" in refused.json()["error"]["message"]
        # under the body limit, over what the context can hold: refused before tokenizing
        started = time.perf_counter()
        seven_mb = {"model": "agent", "messages": [{"role": "user", "content": "word " * 1_400_000}]}
        reply = await http.post("/v1/chat/completions", json=seven_mb)
        assert reply.status_code == 400 and "characters, longer than the model's context" in reply.text
        assert time.perf_counter() - started < 1.0
        # a prompt that must be tokenized to be judged: the tokenizer runs off the event loop
        long = {"model": "agent", "messages": [{"role": "user", "content": "word " * 120_000}]}
        busy = asyncio.create_task(http.post("/v1/chat/completions", json=long))
        latencies = await _health_latencies(http, busy)
        assert busy.result().status_code == 400 and "tokens, longer than the model's context" in busy.result().text
        assert latencies and max(latencies) < 0.1, latencies


@pytest.mark.parametrize("stream", [False, True])
async def test_a_client_that_goes_away_cancels_its_generation(served: Served, stream: bool) -> None:
    engine = served.state.engine
    async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=300) as http:
        if stream:
            async with http.stream("POST", "/v1/chat/completions", json=LONG | {"stream": True}) as reply:
                chunks = reply.aiter_bytes()  # held: a dropped iterator would close the connection already
                await anext(chunks)
                await until(lambda: engine.running == 1)
            await chunks.aclose()  # the response is closed: the server sees the disconnect
        else:
            request = asyncio.create_task(http.post("/v1/chat/completions", json=LONG))
            await until(lambda: engine.running == 1)
            request.cancel()  # closes the connection
    # the engine drops it at its next decode step (a few ms here; a second allows for a loaded machine)
    assert await until(lambda: engine.finished["cancelled"] == 1, timeout_s=5) < 1.0
    await until(lambda: engine.running == 0)
    assert engine.finished["length"] == 0


async def test_a_full_queue_answers_429_with_retry_after(served: Served) -> None:
    engine = served.state.engine
    async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=300) as http:
        first = asyncio.create_task(http.post("/v1/chat/completions", json=LONG))
        await until(lambda: engine.running == 1)
        second = asyncio.create_task(http.post("/v1/chat/completions", json=LONG))
        await until(lambda: engine.waiting == 1)
        refused = await http.post("/v1/chat/completions", json=LONG)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["type"] == "RateLimitError"
        assert "MAX_WAITING_REQUESTS=1" in refused.json()["error"]["message"]
        first.cancel()
        second.cancel()
    await until(lambda: engine.finished["cancelled"] == 2)
