"""`python -m tracewheel.inference` with capture on: the embedded engine (tiny model) and
pass-through mode in front of the stand-in upstream, each through the official openai client."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tracewheel.core.events import connect, ensure_streams
from tracewheel.core.natsserver import NatsServer, free_port, wait_for_port
from tracewheel.core.trace import Verdict
from tracewheel.inference.testing import running_inference_service

from .nats_reader import next_traces

pytestmark = pytest.mark.slow

STANDIN = Path(__file__).with_name("upstream_standin.py")
NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}


@pytest.fixture
def standin_upstream(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    with (tmp_path / "upstream.log").open("w") as log:
        process = subprocess.Popen([sys.executable, str(STANDIN), str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", port, 60, process)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(30)


def capture_env(nats: NatsServer, **extra: str) -> dict[str, str]:
    return {"TW_INFERENCE_CAPTURE": "true", "TW_INFERENCE_NATS_URL": nats.url, **extra}


async def test_the_embedded_engine_is_captured(tiny_model_dir: Path, nats_server: NatsServer, tmp_path: Path) -> None:
    client_nats, js = await connect(nats_server.url, "test-reader")
    await ensure_streams(js)
    env = capture_env(nats_server, TW_INFERENCE_DEFAULT_MAX_TOKENS="8")
    with running_inference_service(tiny_model_dir, tmp_path, env) as service:
        async with openai.AsyncOpenAI(base_url=service.http_url, api_key="unused", max_retries=0) as client:
            history: list[dict[str, object]] = [{"role": "user", "content": "hello"}]
            stream = await client.chat.completions.create(  # type: ignore[call-overload]
                model="agent",
                messages=history,
                stream=True,
                stream_options={"include_usage": True},  # a stream reports usage only when asked
                extra_body=NO_THINKING,
            )
            first = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            history += [{"role": "assistant", "content": first}, {"role": "user", "content": "and then?"}]
            second = await client.chat.completions.create(model="agent", messages=history, extra_body=NO_THINKING)  # type: ignore[arg-type]
        async with httpx.AsyncClient() as http:
            done = await http.post(f"{service.http_url}/traces/{second.id}/complete", json={"thumbs": "up", "score": 1})
        assert done.status_code == 200, done.text
        (trace,) = await next_traces(js, 1)
    await client_nats.close()
    assert [m.role for m in trace.messages] == ["user", "assistant", "user", "assistant"]
    assert trace.messages[1].content == first and trace.messages[3].content == second.choices[0].message.content
    assert trace.model == "agent" and trace.metadata.source == "capture"
    assert trace.metadata.usage.completion_tokens == second.usage.completion_tokens + 8  # type: ignore[union-attr]
    assert trace.outcome is not None and (trace.outcome.verdict, trace.outcome.score) == (Verdict.PASSED, 1.0)


async def test_pass_through_mode(
    standin_upstream: str, tiny_model_dir: Path, nats_server: NatsServer, tmp_path: Path
) -> None:
    client_nats, js = await connect(nats_server.url, "test-reader")
    await ensure_streams(js)
    env = capture_env(nats_server, TW_INFERENCE_BACKEND="upstream", TW_INFERENCE_UPSTREAM_URL=standin_upstream)
    with running_inference_service(tiny_model_dir, tmp_path, env) as service:
        headers = {"X-Tracewheel-Trace-Id": "team-run-1"}
        async with openai.AsyncOpenAI(
            base_url=service.http_url, api_key="unused", max_retries=0, default_headers=headers
        ) as client:
            assert [m.id async for m in client.models.list()] == ["teacher"]
            reply = await client.chat.completions.create(model="teacher", messages=[{"role": "user", "content": "hi"}])
            with pytest.raises(openai.NotFoundError):
                await client.chat.completions.create(model="refuse", messages=[{"role": "user", "content": "hi"}])
        async with httpx.AsyncClient() as http:
            done = await http.post(f"{service.http_url}/traces/team-run-1/complete", json={"verdict": "failed"})
        assert done.status_code == 200, done.text
        traces = {t.id: t for t in await next_traces(js, 2)}
    await client_nats.close()
    assert reply.choices[0].message.content == "Answer 0: hi"
    assert traces["team-run-1"].outcome is not None and traces["team-run-1"].outcome.verdict == Verdict.FAILED
    (refused,) = [t for t in traces.values() if t.id != "team-run-1"]
    assert refused.metadata.extra["capture_header"] == "team-run-1" and refused.outcome is not None
    assert refused.outcome.verdict == Verdict.ERROR
