"""The running service through the official openai client (sync, async, streaming) and gRPC."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import httpx
import openai
import pytest

from tracewheel.v1 import inference_pb2, inference_pb2_grpc

from .conftest import RunningService, make_adapter

NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "browser_navigate",
            "description": "Navigate to a URL",
            "parameters": {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
        },
    }
]
HISTORY = [
    {"role": "user", "content": "Open the shop."},
    {
        "role": "assistant",
        "content": None,
        "reasoning": "I will navigate.",
        "tool_calls": [
            {
                "id": "chatcmpl-tool-1",
                "type": "function",
                "function": {"name": "browser_navigate", "arguments": '{"url": "http://127.0.0.1:8400"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "chatcmpl-tool-1", "content": "Page Title: Shop"},
]


@pytest.fixture
def client(inference_service: RunningService) -> openai.OpenAI:
    return openai.OpenAI(base_url=inference_service.http_url, api_key="unused", max_retries=0)


def test_models_lists_the_base_and_the_agent_alias(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list().data}
    assert {"tiny-qwen3", "agent"} <= ids


def test_chat_completion_with_tools_and_history(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="agent", messages=HISTORY, tools=TOOLS, max_tokens=5, temperature=0, extra_body=NO_THINKING
    )
    choice = reply.choices[0]
    assert choice.finish_reason in ("length", "stop", "tool_calls")
    assert reply.usage.prompt_tokens > 50 and reply.usage.completion_tokens <= 5
    assert reply.id.startswith("chatcmpl-")


def test_streaming_adds_up_to_the_non_streaming_answer(client: openai.OpenAI) -> None:
    request = {
        "model": "agent",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 12,
        "temperature": 0,
        "extra_body": NO_THINKING,
    }
    whole = client.chat.completions.create(**request).choices[0].message.content
    chunks = list(client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole
    assert chunks[-1].usage.completion_tokens == 12
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_thinking_enabled_reads_the_output_as_reasoning(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="agent", messages=[{"role": "user", "content": "hi"}], max_tokens=6, temperature=0
    )
    message = reply.choices[0].message
    # the random model never closes </think>: with thinking on, all of it is reasoning (qwen3 parser)
    assert message.content is None and message.model_extra["reasoning"]


async def test_async_client_with_concurrent_requests(inference_service: RunningService) -> None:
    client = openai.AsyncOpenAI(base_url=inference_service.http_url, api_key="unused", max_retries=0)
    prompts = [f"question number {i}" for i in range(4)]

    async def ask(prompt: str) -> str:
        reply = await client.chat.completions.create(
            model="agent",
            messages=[{"role": "user", "content": prompt}],
            max_tokens=8,
            temperature=0,
            extra_body=NO_THINKING,
        )
        return reply.choices[0].message.content or ""

    together = await asyncio.gather(*(ask(p) for p in prompts))
    one_by_one = [await ask(p) for p in prompts]
    await client.close()
    assert together == one_by_one


@pytest.mark.parametrize(
    ("request_body", "status", "message"),
    [
        ({"model": "no-such-model"}, 404, "does not exist"),
        ({"messages": [{"role": "tool", "tool_call_id": "x", "content": "r"}]}, 400, "matches no earlier tool call"),
        ({"messages": [{"role": "robot", "content": "r"}]}, 400, "unknown role 'robot'"),
        (
            {"tools": [{"type": "function", "function": {"name": "t", "parameters": {"type": 12}}}]},
            400,
            "invalid JSON schema",
        ),
        ({"messages": [{"role": "user", "content": "word " * 9000}]}, 400, "longer than the model's context"),
        (
            {"tool_choice": {"type": "function", "function": {"name": "missing"}}, "tools": TOOLS},
            400,
            "not among the tools",
        ),
    ],
)
def test_bad_requests_get_openai_style_errors(
    client: openai.OpenAI, request_body: dict, status: int, message: str
) -> None:
    body = {"model": "agent", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2} | request_body
    with pytest.raises(openai.APIStatusError) as error:
        client.chat.completions.create(**body)
    assert error.value.status_code == status
    assert message in error.value.body["message"]


def test_adapters_load_alias_rollback_and_bad_adapters(
    client: openai.OpenAI, inference_service: RunningService, tiny_model_dir: Path, tmp_path: Path
) -> None:
    adapter = make_adapter(tiny_model_dir, inference_service.home / "adapter-a", seed=1)
    http = client._client  # the same httpx client the SDK uses
    base_url = inference_service.http_url.removesuffix("/v1")
    loaded = http.post(f"{base_url}/v1/load_lora_adapter", json={"lora_name": "cand-1", "lora_path": str(adapter)})
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["load_seconds"] < 2.0

    ask = {
        "messages": [{"role": "user", "content": "same prompt"}],
        "max_tokens": 8,
        "temperature": 0,
        "extra_body": NO_THINKING,
    }
    base_text = client.chat.completions.create(model="tiny-qwen3", **ask).choices[0].message.content
    adapter_text = client.chat.completions.create(model="cand-1", **ask).choices[0].message.content
    assert adapter_text != base_text

    with grpc.insecure_channel(inference_service.grpc_address) as channel:
        control = inference_pb2_grpc.InferenceControlStub(channel)
        moved = control.SetAlias(inference_pb2.SetAliasRequest(alias="agent", target="cand-1"))
        assert moved.previous_target == "tiny-qwen3"
        assert client.chat.completions.create(model="agent", **ask).choices[0].message.content == adapter_text
        with pytest.raises(grpc.RpcError) as error:
            control.UnloadAdapter(inference_pb2.UnloadAdapterRequest(lora_name="cand-1"))
        assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        back = control.Rollback(inference_pb2.RollbackRequest(alias="agent"))
        assert (back.target, back.previous_target) == ("tiny-qwen3", "cand-1")
        kinds = {m.name: m.kind for m in control.ListModels(inference_pb2.ListModelsRequest()).models}
        assert kinds["cand-1"] == "adapter" and kinds["agent"] == "alias"

    not_adapter = tmp_path / "empty"
    not_adapter.mkdir()
    for path, expected in [(tmp_path / "missing", "does not exist"), (not_adapter, "is not a PEFT adapter")]:
        reply = http.post(f"{base_url}/v1/load_lora_adapter", json={"lora_name": "bad", "lora_path": str(path)})
        assert reply.status_code == 400 and expected in reply.json()["error"]["message"]
    # what is served stays served
    assert client.chat.completions.create(model="cand-1", **ask).choices[0].message.content == adapter_text
    assert http.post(f"{base_url}/v1/unload_lora_adapter", json={"lora_name": "cand-1"}).status_code == 200
    assert client.chat.completions.create(model="tiny-qwen3", **ask).choices[0].message.content == base_text


def test_a_body_that_is_not_json_and_an_unknown_path_get_openai_style_errors(
    inference_service: RunningService,
) -> None:
    """Found by the schemathesis run (tests/test_fuzz_openapi.py): FastAPI's own refusals answered {"detail": ...}."""
    base = inference_service.http_url
    broken = httpx.post(f"{base}/chat/completions", content=b"\xff\xfe{", headers={"content-type": "application/json"})
    unknown = httpx.get(f"{base}/nowhere")
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "BadRequestError"
    assert "parsing the body" in broken.json()["error"]["message"]
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "NotFoundError"
