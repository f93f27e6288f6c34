"""Capture in front of an upstream, through the official openai client, with traces read from NATS.

The stand-in upstream (upstream_standin.py) and the endpoint run in the test's event loop
behind real sockets (core's HttpServer); traces are published to a real nats-server.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio
from nats.js import JetStreamContext
from pydantic import ValidationError

from tracewheel.core.events import connect, ensure_streams
from tracewheel.core.http_security import HttpSecurity
from tracewheel.core.http_server import HttpServer
from tracewheel.core.natsserver import NatsServer, free_port
from tracewheel.core.trace import Trace, Verdict
from tracewheel.core.trace_events import TraceSink
from tracewheel.inference.adapters import ModelRegistry
from tracewheel.inference.capture.http import install_capture
from tracewheel.inference.capture.options import CaptureOptions
from tracewheel.inference.capture.runtime import CaptureRuntime, capture_runtime
from tracewheel.inference.config import InferenceSettings
from tracewheel.inference.passthrough import UpstreamOptions, create_passthrough_app
from tracewheel.inference.vllm_backend import VllmAdapters, create_proxy_app

from .nats_reader import next_traces
from .upstream_standin import create_upstream_app

HEADER = "X-Tracewheel-Trace-Id"


@dataclass
class Endpoint:
    url: str  # ends in /v1
    runtime: CaptureRuntime
    js: JetStreamContext

    def client(self, **headers: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.url, api_key="unused", max_retries=0, default_headers=headers)

    async def traces(self, count: int) -> list[Trace]:
        """The next `count` traces published to traces.v1.completed."""
        return await next_traces(self.js, count)


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[str]:
    server = HttpServer(create_upstream_app(), "127.0.0.1", 0)
    await server.start()
    yield f"http://127.0.0.1:{server.port}/v1"
    await server.stop()


@contextlib.asynccontextmanager
async def serving(app: Any, nats: NatsServer, home: Path, idle_timeout_s: float = 60.0) -> AsyncIterator[Endpoint]:
    """`app` with capture installed, publishing to `nats`."""
    sink = TraceSink(lambda: connect(nats.url, "test-capture"))
    runtime = capture_runtime(CaptureOptions(capture=True, capture_idle_timeout_s=idle_timeout_s), home, sink.send)
    install_capture(app, runtime)
    await runtime.start()
    server = HttpServer(app, "127.0.0.1", 0)
    await server.start()
    client, js = await connect(nats.url, "test-reader")
    await ensure_streams(js)
    try:
        yield Endpoint(f"http://127.0.0.1:{server.port}/v1", runtime, js)
    finally:
        await server.stop()
        await runtime.stop()
        await sink.close()
        await client.close()


@contextlib.asynccontextmanager
async def passthrough(upstream_url: str, nats: NatsServer, home: Path, **kwargs: Any) -> AsyncIterator[Endpoint]:
    app, http = create_passthrough_app(UpstreamOptions(upstream_url=upstream_url))
    try:
        async with serving(app, nats, home, **kwargs) as endpoint:
            yield endpoint
    finally:
        await http.aclose()


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


async def run_conversation(client: openai.AsyncOpenAI, topic: str, *, stream: bool) -> tuple[list[Any], list[str]]:
    """An agent loop: ask with a tool, answer the call, get the answer; returns history and completion ids."""
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    history: list[Any] = [{"role": "system", "content": "Be brief."}, user(f"use a tool for {topic}")]
    ids = []
    for _ in range(2):
        if stream:
            stream = await client.chat.completions.create(
                model="teacher", messages=history, tools=tools, stream=True, stream_options={"include_usage": True}
            )
            chunks = [chunk async for chunk in stream]
            ids.append(chunks[0].id)
            calls: dict[int, dict[str, Any]] = {}
            content = ""
            for chunk in chunks:
                delta = chunk.choices[0].delta if chunk.choices else None
                content += (delta.content or "") if delta else ""
                for call in (delta.tool_calls or []) if delta else []:
                    slot = calls.setdefault(
                        call.index, {"id": call.id, "type": "function", "function": {"name": "", "arguments": ""}}
                    )
                    slot["function"]["name"] += call.function.name or ""
                    slot["function"]["arguments"] += call.function.arguments or ""
            message = {
                "role": "assistant",
                "content": content or None,
                **({"tool_calls": list(calls.values())} if calls else {}),
            }
        else:
            reply = await client.chat.completions.create(model="teacher", messages=history, tools=tools)
            ids.append(reply.id)
            message = reply.choices[0].message.model_dump(exclude_none=True, include={"role", "content", "tool_calls"})
        history.append(message)
        for call in message.get("tool_calls") or []:
            history.append({"role": "tool", "tool_call_id": call["id"], "content": f"{topic} facts"})
    return history, ids


async def test_header_groups_calls_and_feedback_completes_the_trace(
    upstream: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    async with passthrough(upstream, nats_server, tmp_path) as endpoint, endpoint.client(**{HEADER: "run-1"}) as client:
        history, _ = await run_conversation(client, "plums", stream=True)
        async with httpx.AsyncClient() as http:
            reply = await http.post(f"{endpoint.url}/traces/run-1/complete", json={"verdict": "passed", "note": "ok"})
        assert reply.status_code == 200 and reply.json()["messages"] == 5
        (trace,) = await endpoint.traces(1)
    assert trace.id == "run-1" and trace.metadata.source == "capture"
    assert [m.role for m in trace.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert trace.messages[2].reasoning_content == "Thinking it over."  # the client never sent it back
    assert trace.messages[2].tool_calls[0].function.arguments == '{"q": "use a tool for plums"}'
    assert trace.messages[4].content == history[-1]["content"] == "Answer 1: plums facts"
    assert trace.outcome is not None and trace.outcome.verdict == Verdict.PASSED and trace.outcome.detail == "ok"
    assert trace.metadata.usage.completion_tokens > 0 and trace.tools[0].function.name == "lookup"


async def test_calls_without_a_header_group_by_their_messages(
    upstream: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    async with passthrough(upstream, nats_server, tmp_path) as endpoint, endpoint.client() as client:
        _, apple_ids = await run_conversation(client, "apples", stream=False)
        _, pear_ids = await run_conversation(client, "pears", stream=True)
        async with httpx.AsyncClient() as http:  # a completion id of any call finds its trace
            for completion_id in (apple_ids[0], pear_ids[1]):
                assert (await http.post(f"{endpoint.url}/traces/{completion_id}/complete")).status_code == 200
        traces = await endpoint.traces(2)
    contents = sorted(t.messages[-1].content or "" for t in traces)
    assert contents == ["Answer 1: apples facts", "Answer 1: pears facts"]
    assert all(len(t.messages) == 5 and t.metadata.extra["capture_grouping"] == "prefix" for t in traces)


async def test_an_idle_conversation_completes_itself(upstream: str, nats_server: NatsServer, tmp_path: Path) -> None:
    async with (
        passthrough(upstream, nats_server, tmp_path, idle_timeout_s=0.2) as endpoint,
        endpoint.client() as client,
    ):
        await client.chat.completions.create(model="teacher", messages=[user("hello")])
        (trace,) = await endpoint.traces(1)
    assert trace.metadata.extra["capture_completed_by"] == "idle" and trace.messages[-1].content == "Answer 0: hello"


async def test_a_refused_call_reaches_the_client_unchanged_and_is_never_trained_on(
    upstream: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    async with passthrough(upstream, nats_server, tmp_path) as endpoint, endpoint.client() as client:
        with pytest.raises(openai.NotFoundError, match=r"The model `refuse` does not exist\."):
            await client.chat.completions.create(model="refuse", messages=[user("hi")])
        (trace,) = await endpoint.traces(1)
    assert trace.outcome is not None and trace.outcome.verdict == Verdict.ERROR  # curation rejects `error`
    assert trace.outcome.detail == "refused: HTTP 404: The model `refuse` does not exist."


async def test_a_client_gone_mid_stream_leaves_an_incomplete_trace(
    upstream: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    async with passthrough(upstream, nats_server, tmp_path) as endpoint, endpoint.client() as client:
        stream = await client.chat.completions.create(model="hang", messages=[user("tell me")], stream=True)
        async for _ in stream:
            break
        await stream.close()
        (trace,) = await endpoint.traces(1)
    assert trace.outcome is not None and trace.outcome.verdict == Verdict.ERROR
    assert trace.outcome.detail.startswith("incomplete: the client went away after")
    assert [m.role for m in trace.messages] == ["user"]


async def test_an_upstream_that_is_down_is_a_502(nats_server: NatsServer, tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"
    async with passthrough(down, nats_server, tmp_path) as endpoint, endpoint.client() as client:
        with pytest.raises(openai.APIStatusError) as refused:
            await client.chat.completions.create(model="teacher", messages=[user("hi")])
        (trace,) = await endpoint.traces(1)
    assert refused.value.status_code == 502 and "unreachable" in refused.value.message
    assert trace.outcome is not None and trace.outcome.detail.startswith("refused: HTTP 502: upstream")


async def test_the_client_gets_the_upstreams_bytes(upstream: str, nats_server: NatsServer, tmp_path: Path) -> None:
    request = {"model": "teacher", "messages": [user("use a tool please")], "stream": True}
    async with passthrough(upstream, nats_server, tmp_path) as endpoint, httpx.AsyncClient() as http:
        for body in (request, {**request, "stream": False}):
            direct = await http.post(f"{upstream}/chat/completions", json=body)
            proxied = await http.post(f"{endpoint.url}/chat/completions", json=body)
            assert proxied.content == direct.content and proxied.status_code == direct.status_code
            assert proxied.headers["content-type"] == direct.headers["content-type"]
        models = await http.get(f"{endpoint.url}/models")
        assert models.json()["data"][0]["id"] == "teacher"
        assert (await http.post(f"{endpoint.url}/traces/nope/complete")).status_code == 404
        bad = await http.post(f"{endpoint.url}/traces/x/complete", content=json.dumps({"score": 3}))
        assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("score: ")


async def test_the_vllm_backend_is_captured_too(upstream: str, nats_server: NatsServer, tmp_path: Path) -> None:
    base = upstream.removesuffix("/v1")
    registry = ModelRegistry(VllmAdapters(base), "teacher", aliases={"agent": "teacher"})
    async with serving(create_proxy_app(registry, base), nats_server, tmp_path) as endpoint:
        async with endpoint.client(**{HEADER: "vllm-1"}) as client:
            await run_conversation(client, "figs", stream=True)
        async with httpx.AsyncClient() as http:
            assert (await http.post(f"{endpoint.url}/traces/vllm-1/complete", json={"thumbs": "up"})).status_code == 200
        (trace,) = await endpoint.traces(1)
    assert len(trace.messages) == 5 and trace.outcome is not None and trace.outcome.verdict == Verdict.PASSED


async def test_the_pass_through_is_guarded_and_only_authenticated_calls_are_recorded(
    upstream: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    security = HttpSecurity(token="secret", hosts=None, max_body_bytes=1 << 20)
    app, http_client = create_passthrough_app(UpstreamOptions(upstream_url=upstream, upstream_api_key="k"), security)
    async with serving(app, nats_server, tmp_path) as endpoint, httpx.AsyncClient() as http:
        body = {"model": "teacher", "messages": [user("hi")]}
        assert (await http.post(f"{endpoint.url}/chat/completions", json=body)).status_code == 401
        assert (await http.post(f"{endpoint.url}/traces/x/complete")).status_code == 401
        auth = {"Authorization": "Bearer secret", HEADER: "guarded-1"}
        reply = await http.post(f"{endpoint.url}/chat/completions", json={**body, "model": "whoami"}, headers=auth)
        # the upstream gets its own key, never the token that guards this endpoint
        assert reply.json()["choices"][0]["message"]["content"] == "authorization: Bearer k"
        assert endpoint.runtime.book.open_count == 1  # the refused call was never seen by capture
        assert (await http.post(f"{endpoint.url}/traces/guarded-1/complete", headers=auth)).status_code == 200
        (trace,) = await endpoint.traces(1)
    await http_client.aclose()
    assert trace.id == "guarded-1" and trace.metadata.extra["capture_calls"] == "1"


def test_upstream_settings_go_together() -> None:
    with pytest.raises(ValidationError, match="upstream_url is set exactly when backend is 'upstream'"):
        InferenceSettings(backend="upstream")
    with pytest.raises(ValidationError, match="upstream_url is set exactly when"):
        InferenceSettings(upstream_url="http://teacher/v1")
    with pytest.raises(ValidationError, match="consume_events does not apply"):
        InferenceSettings(backend="upstream", upstream_url="http://teacher/v1", consume_events=True)
    assert InferenceSettings(backend="upstream", upstream_url="http://teacher/v1", capture=True).capture
