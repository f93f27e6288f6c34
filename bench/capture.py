"""Capture's cost and correctness: the inference service in pass-through mode in front of a
small OpenAI-compatible upstream, with capture off and on (publishing to a real nats-server).

    .venv/bin/python bench/capture.py [--conversations 40 --concurrent 50 --seconds 60]

1. Latency, sequential: agent-shaped conversations (a 1.5 KB system prompt, a tool call and its
   500-character result per turn, 4 turns = 8 calls, half of them streamed) run round-robin
   against the upstream directly, the pass-through without capture and with it; p50/p90 per
   path, and what capture adds (p50 difference and ratio, measured in the same run).
2. Correctness under load: `--concurrent` conversations at once for `--seconds` (2-5 turns
   each, grouped by message prefix only, no header), each completed by its last completion id;
   then every published trace is matched to the conversation whose completion ids it holds:
   lost (a conversation with no trace), merged (a trace with calls of two conversations),
   split (a conversation in two traces), short (a trace missing messages).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tracewheel.core.events import SUBJECT_TRACE_COMPLETED, connect, ensure_streams
from tracewheel.core.natsserver import NatsServer, free_port, wait_for_port
from tracewheel.core.trace_proto import trace_from_proto
from tracewheel.inference.testing import running_inference_service
from tracewheel.v1 import events_pb2

SYSTEM = "You operate tools for the user. " + " ".join(f"Rule {i}: be exact about item {i}." for i in range(60))
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
TOOL_RESULT = "Result row: " + "lorem ipsum dolor sit amet " * 18


# --- the upstream: answers a user message with a tool call and a tool result with text ---------


def upstream_reply(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The completion id and the assistant message for a request (a function of the request)."""
    digest = hashlib.sha256(json.dumps(body["messages"]).encode()).hexdigest()
    last = body["messages"][-1]
    if last["role"] == "user":
        call = {"id": f"call-{digest[:10]}", "type": "function", "function": {"name": "lookup", "arguments": ""}}
        call["function"]["arguments"] = json.dumps({"q": last["content"][:40]})
        return f"chatcmpl-{digest[:20]}", {"role": "assistant", "content": None, "tool_calls": [call]}
    return f"chatcmpl-{digest[:20]}", {"role": "assistant", "content": f"Done with {digest[:6]}: all rows read."}


def serve_upstream(port: int) -> None:
    import uvicorn

    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = json.loads(await request.body())
        completion_id, message = upstream_reply(body)
        usage = {"prompt_tokens": 400, "completion_tokens": 20, "total_tokens": 420}
        if not body.get("stream"):
            choice = {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
            }
            whole = {"id": completion_id, "object": "chat.completion", "created": 0, "model": body["model"]}
            return JSONResponse({**whole, "choices": [choice], "usage": usage})

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {"id": completion_id, "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
            data["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
            return f"data: {json.dumps(data)}\n\n".encode()

        async def stream() -> AsyncIterator[bytes]:
            yield chunk({"role": "assistant", "content": ""})
            if message.get("tool_calls"):
                yield chunk({"tool_calls": [{"index": 0, **message["tool_calls"][0]}]}, None)
                yield chunk({}, "tool_calls")
            else:
                for start in range(0, len(message["content"]), 8):
                    yield chunk({"content": message["content"][start : start + 8]})
                yield chunk({}, "stop")
            yield b"data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# --- one conversation, as an agent runs it ------------------------------------------------------


def _read_stream(body: bytes) -> tuple[str, dict[str, Any]]:
    completion_id, content, calls = "", "", []
    for line in body.decode().split("\n"):
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        data = json.loads(line[6:])
        completion_id = completion_id or data["id"]
        delta = data["choices"][0]["delta"]
        content += delta.get("content") or ""
        calls += [{k: v for k, v in c.items() if k != "index"} for c in delta.get("tool_calls") or []]
    return completion_id, {"role": "assistant", "content": content or None, **({"tool_calls": calls} if calls else {})}


@dataclass
class Conversation:
    topic: str
    turns: int
    stream: bool
    completion_ids: list[str] = field(default_factory=list)
    messages: int = 0


def _steps(conversation: Conversation) -> Iterator[list[dict[str, Any]]]:
    """Yields the request messages of each call; the caller sends the reply back into `history`."""
    history: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    for turn in range(conversation.turns):
        history.append({"role": "user", "content": f"Turn {turn} about {conversation.topic}: find the rows."})
        for _ in range(2):  # the tool call, then the answer
            reply = yield history
            history.append(reply)
            for call in reply.get("tool_calls") or []:
                history.append({"role": "tool", "tool_call_id": call["id"], "content": TOOL_RESULT})
    conversation.messages = len(history)


def _parse(response: httpx.Response, stream: bool) -> tuple[str, dict[str, Any]]:
    if response.status_code != 200:
        raise RuntimeError(f"{response.request.url}: HTTP {response.status_code} {response.text[:300]}")
    if stream:
        return _read_stream(response.content)
    data = response.json()
    return data["id"], {k: v for k, v in data["choices"][0]["message"].items() if v is not None}


def run_sync(client: httpx.Client, base: str, conversation: Conversation) -> list[float]:
    """Runs one conversation; returns each call's seconds."""
    times, steps = [], _steps(conversation)
    messages = next(steps)
    while True:
        body = {"model": "teacher", "messages": messages, "tools": TOOLS, "stream": conversation.stream}
        started = time.perf_counter()
        response = client.post(f"{base}/chat/completions", json=body)
        times.append(time.perf_counter() - started)
        completion_id, reply = _parse(response, conversation.stream)
        conversation.completion_ids.append(completion_id)
        try:
            messages = steps.send(reply)
        except StopIteration:
            return times


async def run_async(client: httpx.AsyncClient, base: str, conversation: Conversation) -> None:
    steps = _steps(conversation)
    messages = next(steps)
    while True:
        body = {"model": "teacher", "messages": messages, "tools": TOOLS, "stream": conversation.stream}
        response = await client.post(f"{base}/chat/completions", json=body)
        completion_id, reply = _parse(response, conversation.stream)
        conversation.completion_ids.append(completion_id)
        try:
            messages = steps.send(reply)
        except StopIteration:
            break
    (await client.post(f"{base}/traces/{conversation.completion_ids[-1]}/complete")).raise_for_status()


# --- the figures ----------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(paths: dict[str, str], capture_url: str, conversations: int) -> dict[str, dict[str, list[float]]]:
    """Seconds per call, by path and by streamed/whole, the paths taken round-robin per conversation."""
    times: dict[str, dict[str, list[float]]] = {name: {"whole": [], "streamed": []} for name in paths}
    rng = random.Random(0)
    with httpx.Client(timeout=30, limits=httpx.Limits(keepalive_expiry=2.0)) as client:
        for i in range(conversations + 2):  # the first two warm up
            order = list(paths.items())
            rng.shuffle(order)
            for name, base in order:
                conversation = Conversation(f"latency-{i}-{name}", 4, stream=i % 2 == 1)
                calls = run_sync(client, base, conversation)
                if base == capture_url:
                    client.post(f"{base}/traces/{conversation.completion_ids[-1]}/complete").raise_for_status()
                if i >= 2:
                    times[name]["streamed" if conversation.stream else "whole"] += calls
    return times


async def under_load(base: str, concurrent: int, seconds: float) -> list[Conversation]:
    """`concurrent` agents, each running conversations one after another until time is up."""
    done: list[Conversation] = []
    deadline = time.monotonic() + seconds

    async def agent(index: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(index)
        k = 0
        while time.monotonic() < deadline:
            conversation = Conversation(f"agent {index} task {k}", rng.randint(2, 5), stream=rng.random() < 0.5)
            await run_async(client, base, conversation)
            done.append(conversation)
            k += 1

    # idle connections are dropped before uvicorn's 5 s keep-alive closes them under a request in flight
    limits = httpx.Limits(max_connections=concurrent + 10, keepalive_expiry=2.0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(*(agent(i, client) for i in range(concurrent)))
    return done


async def published_traces(nats_url: str, expected: int, timeout_s: float = 60.0) -> list[Any]:
    """Reads traces.v1.completed until `expected` traces arrived or time ran out."""
    client, js = await connect(nats_url, "bench-reader")
    await ensure_streams(js)
    subscription = await js.pull_subscribe(SUBJECT_TRACE_COMPLETED, durable="bench-reader", stream="TRACES")
    traces: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(traces) < expected and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            for message in await subscription.fetch(200, timeout=2):
                await message.ack()
                traces.append(trace_from_proto(events_pb2.TraceCompleted.FromString(message.data).trace))
    await client.close()
    return traces


def check(conversations: list[Conversation], traces: list[Any]) -> dict[str, int]:
    """Lost, merged, split and short, matching traces to conversations by their completion ids."""
    owner = {cid: i for i, c in enumerate(conversations) for cid in c.completion_ids}
    traces_of: dict[int, set[str]] = {i: set() for i in range(len(conversations))}
    merged = short = 0
    for trace in traces:
        ids = [cid for cid in trace.metadata.extra.get("capture_completion_ids", "").split(",") if cid]
        owners = {owner[cid] for cid in ids if cid in owner}
        merged += len(owners) > 1
        for index in owners:
            traces_of[index].add(trace.id)
            short += len(trace.messages) < conversations[index].messages
    lost = sum(1 for ids in traces_of.values() if not ids)
    split = sum(1 for ids in traces_of.values() if len(ids) > 1)
    return {"lost": lost, "merged": merged, "split": split, "short": short}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


@contextlib.contextmanager
def stack(home: Path) -> Iterator[tuple[NatsServer, dict[str, str]]]:
    """nats-server, the upstream, and the pass-through with capture off and on."""
    nats = NatsServer(home / "jetstream", log_file=home / "nats.log").start()
    port = free_port()
    upstream = subprocess.Popen([sys.executable, __file__, "--serve-upstream", str(port)])
    upstream_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for_port("127.0.0.1", port, 60, upstream)
        for folder in ("plain", "captured"):
            (home / folder).mkdir()
        env = {
            "TW_INFERENCE_BACKEND": "upstream",
            "TW_INFERENCE_UPSTREAM_URL": upstream_url,
            "TW_INFERENCE_LOG_LEVEL": "WARNING",
        }
        capture_env = {**env, "TW_INFERENCE_CAPTURE": "true", "TW_INFERENCE_NATS_URL": nats.url}
        with (
            running_inference_service(home / "unused-model", home / "plain", env) as plain,
            running_inference_service(home / "unused-model", home / "captured", capture_env) as captured,
        ):
            yield (
                nats,
                {"upstream": upstream_url, "pass-through": plain.http_url, "pass-through + capture": captured.http_url},
            )
    finally:
        upstream.terminate()
        upstream.wait(30)
        nats.stop()


def report_latency(times: dict[str, dict[str, list[float]]]) -> None:
    for kind in ("whole", "streamed"):
        print(f"  {kind} replies ({len(times['upstream'][kind])} calls per path):")
        p50 = {}
        for name, by_kind in times.items():
            values = by_kind[kind]
            p50[name] = statistics.median(values) * 1000
            print(f"    {name:24s} p50 {p50[name]:6.2f} ms   p90 {_percentile(values, 0.9) * 1000:6.2f} ms")
        added = p50["pass-through + capture"] - p50["pass-through"]
        ratio = p50["pass-through + capture"] / p50["pass-through"]
        verdict = "met" if added <= 2 else "NOT met"
        print(f"    capture adds p50 {added:+.2f} ms ({ratio:.2f}x the pass-through); goal <= 2 ms: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=40, help="latency: conversations per path (8 calls each)")
    parser.add_argument("--concurrent", type=int, default=50, help="load: conversations at once")
    parser.add_argument("--seconds", type=float, default=60.0, help="load: how long new conversations start")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as home, stack(Path(home)) as (nats, paths):
        capture_url = paths["pass-through + capture"]
        print("1. latency, sequential, paths round-robin:")
        report_latency(latency(paths, capture_url, args.conversations))
        print(
            f"2. {args.concurrent} concurrent conversations for {args.seconds:.0f} s through capture (prefix grouping):"
        )
        started = time.monotonic()
        try:
            conversations = asyncio.run(under_load(capture_url, args.concurrent, args.seconds))
        except Exception:
            for log in sorted(Path(home).glob("*/inference.log")):
                print(f"--- {log}:\n{log.read_text()[-3000:]}", file=sys.stderr)
            raise
        elapsed = time.monotonic() - started
        calls = sum(len(c.completion_ids) for c in conversations)
        latency_traces = 2 + args.conversations  # the completed conversations of part 1 come first
        traces = asyncio.run(published_traces(nats.url, len(conversations) + latency_traces))
        counts = check(conversations, traces)
        rate = calls / elapsed
        print(f"  {len(conversations)} conversations, {calls} calls in {elapsed:.0f} s ({rate:.0f} calls/s)")
        print(f"  {len(traces) - latency_traces} traces read")
        print("  " + ", ".join(f"{count} {name}" for name, count in counts.items()))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
