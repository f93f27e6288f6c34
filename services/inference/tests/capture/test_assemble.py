"""Reading captured calls: requests, whole replies, streamed replies, refusals, cut-short streams."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tracewheel.inference.capture.assemble import read_json_reply, read_request, read_sse_reply, refusal_text
from tracewheel.inference.capture.call import read_call

REQUEST = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}).encode()


def sse(*chunks: dict[str, Any], done: bool = True) -> bytes:
    body = b"".join(b"data: " + json.dumps(c, ensure_ascii=False).encode() + b"\n\n" for c in chunks)
    return body + (b"data: [DONE]\n\n" if done else b"")


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


STREAM = sse(
    chunk({"role": "assistant", "content": ""}),
    chunk({"reasoning": "Think ", "reasoning_content": "Think "}),
    chunk({"reasoning": "hard.", "reasoning_content": "hard."}),
    chunk({"content": "Opening"}),
    chunk(
        {
            "tool_calls": [
                {"index": 0, "id": "call_a", "type": "function", "function": {"name": "open", "arguments": ""}}
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"url": '}}]}),
    chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "read", "arguments": "{}"}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"http://x \u2028"}'}}]}),
    chunk({}, "tool_calls"),
    {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 7}},
)


def test_a_stream_adds_up_like_a_client_reads_it() -> None:
    reply = read_sse_reply(STREAM)
    assert reply.completion_id == "chatcmpl-1" and reply.model == "m"
    assert reply.reasoning == "Think hard."  # `reasoning` and `reasoning_content` count once
    assert reply.content == "Opening"
    assert reply.tool_calls == [
        {"id": "call_a", "type": "function", "function": {"name": "open", "arguments": '{"url": "http://x \u2028"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "read", "arguments": "{}"}},
    ]
    assert (reply.finish_reason, reply.prompt_tokens, reply.completion_tokens) == ("tool_calls", 12, 7)


def test_crlf_line_ends_read_the_same() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    assert read_sse_reply(crlf) == read_sse_reply(STREAM)


def test_a_whole_reply_reads_reasoning_under_either_name() -> None:
    body = {
        "id": "chatcmpl-2",
        "model": "m",
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": "r",
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }
    reply = read_json_reply(json.dumps(body).encode())
    assert reply.reasoning == "r" and reply.content is None
    assert reply.tool_calls[0]["function"] == {"name": "f", "arguments": '{"a": 1}'}
    assert (reply.prompt_tokens, reply.completion_tokens) == (3, 4)


def test_requests_that_cannot_be_recorded_say_why() -> None:
    assert read_request(REQUEST).stream is True
    for body, message in ((b"{", "not valid JSON"), (b"[]", "JSON object"), (b'{"messages": []}', "messages")):
        with pytest.raises(ValueError, match=message):
            read_request(body)


def test_refusals_quote_the_upstream() -> None:
    assert refusal_text(b'{"error": {"message": "model not found", "code": 404}}') == "model not found"
    assert refusal_text(b'{"message": "bad"}') == "bad"
    assert refusal_text(b"<html>Bad Gateway</html>") == "<html>Bad Gateway</html>"
    assert refusal_text(b"") == "(empty body)"


def test_calls_are_classified() -> None:
    ok = read_call(REQUEST, 200, "text/event-stream; charset=utf-8", STREAM, finished=True)
    assert ok.state == "ok" and ok.reply is not None and ok.reply.content == "Opening"
    refused = read_call(REQUEST, 400, "application/json", b'{"error": {"message": "no"}}', finished=True)
    assert (refused.state, refused.detail) == ("refused", "HTTP 400: no")
    gone = read_call(REQUEST, 200, "text/event-stream", STREAM[:200], finished=False)
    assert gone.state == "incomplete" and "client went away after 200 bytes" in gone.detail
    cut = read_call(REQUEST, 200, "text/event-stream", sse(chunk({"content": "a"}), done=False), finished=True)
    assert (cut.state, cut.detail) == ("incomplete", "the stream ended before a finish_reason")
    error_in_stream = sse(chunk({"content": "a"}), {"error": {"message": "generation failed: boom"}}, done=False)
    failed = read_call(REQUEST, 200, "text/event-stream", error_in_stream, finished=True)
    assert (failed.state, failed.detail) == ("refused", "HTTP 200: error in the reply: generation failed: boom")
    garbage = read_call(REQUEST, 200, "application/json", b"<html>", finished=True)
    assert garbage.state == "refused" and "unreadable reply" in garbage.detail
