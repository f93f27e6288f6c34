"""A small OpenAI-compatible server standing in for an upstream (a teacher on vLLM, a hosted API).

Its replies are a function of the request, so a test knows what to expect and two identical
requests get identical bytes: a reasoning, then a call of the tool `lookup` when the last
message is a user message that mentions "tool", else the answer `Answer <n>: <last text>`,
where n counts the assistant turns so far. Whole or streamed (content in 4-character pieces,
tool-call arguments in two), with usage. Models with a meaning:
- `refuse`: 404 in OpenAI's error shape;
- `hang`: a stream that sends two chunks and then waits until the client goes away;
- `garbage`: 200 with a body that is not JSON;
- `whoami`: answers with the Authorization header it received.

Run on its own: `python upstream_standin.py PORT`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

CREATED = 1_700_000_000


def plan(body: dict[str, Any], digest: str) -> dict[str, Any]:
    """The reply to `body`: reasoning, content, tool calls, usage."""
    messages = body["messages"]
    last = messages[-1]
    turns = sum(1 for m in messages if m.get("role") == "assistant")
    text = next((str(m.get("content")) for m in reversed(messages) if m.get("role") != "assistant"), "")
    calls, content = [], f"Answer {turns}: {text}"
    if last.get("role") == "user" and "tool" in str(last.get("content")):
        content = None
        arguments = json.dumps({"q": text})
        calls = [
            {"id": f"call-{digest[:8]}", "type": "function", "function": {"name": "lookup", "arguments": arguments}}
        ]
    usage = {"prompt_tokens": len(json.dumps(messages)) // 4, "completion_tokens": len(content or "") // 4 + 1}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return {"reasoning": "Thinking it over.", "content": content, "tool_calls": calls, "usage": usage}


def _chunk(digest: str, model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": f"chatcmpl-{digest[:16]}",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


async def _stream(body: dict[str, Any], reply: dict[str, Any], digest: str, hang: bool) -> AsyncIterator[bytes]:
    model = body["model"]
    yield _chunk(digest, model, {"role": "assistant", "content": ""})
    for piece in ("Thinking ", "it over."):
        yield _chunk(digest, model, {"reasoning": piece, "reasoning_content": piece})
        if hang:
            await asyncio.Event().wait()  # until the client goes away (the task is cancelled)
    content = reply["content"] or ""
    for start in range(0, len(content), 4):
        yield _chunk(digest, model, {"content": content[start : start + 4]})
    for call in reply["tool_calls"]:
        arguments = call["function"]["arguments"]
        first = {"index": 0, "id": call["id"], "type": "function", "function": {"name": "lookup", "arguments": ""}}
        yield _chunk(digest, model, {"tool_calls": [first]})
        for part in (arguments[:5], arguments[5:]):
            yield _chunk(digest, model, {"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
    yield _chunk(digest, model, {}, "tool_calls" if reply["tool_calls"] else "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {"id": f"chatcmpl-{digest[:16]}", "object": "chat.completion.chunk", "created": CREATED}
        yield f"data: {json.dumps({**usage, 'model': model, 'choices': [], 'usage': reply['usage']})}\n\n".encode()
    yield b"data: [DONE]\n\n"


def create_upstream_app() -> FastAPI:
    """The stand-in's routes: /health, /v1/models, /v1/chat/completions."""
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "teacher", "object": "model", "created": 0, "owned_by": "standin"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw)
        digest = hashlib.sha256(raw).hexdigest()
        if body["model"] == "refuse":
            error = {
                "message": "The model `refuse` does not exist.",
                "type": "NotFoundError",
                "param": None,
                "code": 404,
            }
            return JSONResponse({"error": error}, status_code=404)
        if body["model"] == "garbage":
            return Response(b"<html>oops</html>", media_type="application/json")
        reply = plan(body, digest)
        if body["model"] == "whoami":
            reply["content"] = f"authorization: {request.headers.get('authorization')}"
        if body.get("stream"):
            return StreamingResponse(
                _stream(body, reply, digest, body["model"] == "hang"), media_type="text/event-stream"
            )
        message = {"role": "assistant", "content": reply["content"], "reasoning": reply["reasoning"]}
        message["tool_calls"] = reply["tool_calls"]
        finish = "tool_calls" if reply["tool_calls"] else "stop"
        return JSONResponse(
            {
                "id": f"chatcmpl-{digest[:16]}",
                "object": "chat.completion",
                "created": CREATED,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                "usage": reply["usage"],
            }
        )

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_upstream_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
