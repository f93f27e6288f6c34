"""The vLLM backend up to the process boundary, against a stand-in server (vLLM needs CUDA)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import openai
import pytest

from tracewheel.core.chat import load_template
from tracewheel.core.errors import InvalidArgument, Unavailable
from tracewheel.core.http_server import HttpServer
from tracewheel.core.natsserver import free_port
from tracewheel.inference.adapters import ModelRegistry
from tracewheel.inference.config import InferenceSettings
from tracewheel.inference.vllm_backend import (
    VllmAdapters,
    VllmProcess,
    create_proxy_app,
    last_error,
    vllm_command,
    wait_ready,
    write_chat_template,
)

STANDIN = Path(__file__).with_name("vllm_standin.py")


def test_command_line_has_the_production_flags() -> None:
    settings = InferenceSettings(backend="vllm", vllm_port=9001, vllm_max_lora_rank=32, vllm_max_loras=2)
    command = vllm_command(settings, "Qwen/Qwen3-4B", "qwen3-4b")
    assert command[:3] == ["vllm", "serve", "Qwen/Qwen3-4B"]
    joined = " ".join(command)
    for flag in (
        "--enable-auto-tool-choice",
        "--tool-call-parser hermes",
        "--reasoning-parser qwen3",
        "--enable-lora",
        "--max-lora-rank 32",
        "--max-loras 2",
        "--port 9001",
        "--served-model-name qwen3-4b",
    ):
        assert flag in joined


def test_dtype_is_passed_only_when_set() -> None:
    assert "--dtype" not in vllm_command(InferenceSettings(backend="vllm"), "m", "m")  # vLLM's own auto
    assert " --dtype bfloat16" in " ".join(vllm_command(InferenceSettings(backend="vllm", dtype="bfloat16"), "m", "m"))


def test_readiness_fails_clearly_when_the_process_dies() -> None:
    process = VllmProcess([sys.executable, "-c", "raise SystemExit(3)"], f"http://127.0.0.1:{free_port()}")
    with pytest.raises(Unavailable, match="exited with code 3 before it was ready: it printed nothing to stderr"):
        process.start(timeout_s=30)


def test_a_process_that_dies_is_reported_with_its_own_error(capfd: pytest.CaptureFixture[str]) -> None:
    # what vLLM does without a GPU (seen in the inference-gpu image): a traceback, then exit 1
    script = (
        "import sys; print('INFO starting', file=sys.stderr);"
        " raise RuntimeError('Failed to infer device type, please set VLLM_LOGGING_LEVEL=DEBUG')"
    )
    process = VllmProcess([sys.executable, "-c", script], f"http://127.0.0.1:{free_port()}")
    with pytest.raises(Unavailable) as raised:
        process.start(timeout_s=30)
    assert str(raised.value).endswith(
        "exited with code 1 before it was ready: RuntimeError: Failed to infer device type, please set"
        " VLLM_LOGGING_LEVEL=DEBUG"
    )
    assert "INFO starting" in capfd.readouterr().err  # its stderr still reaches the service's log


def test_last_error_prefers_the_exception_line() -> None:
    traceback = ["Traceback (most recent call last):", "  File x", "ValueError: bad", "", "  "]
    assert last_error(traceback) == "ValueError: bad"
    oom = ["loading", "torch.OutOfMemoryError: CUDA out of memory", "shutting down"]
    assert last_error(oom) == "torch.OutOfMemoryError: CUDA out of memory"
    assert last_error(["starting", "killed", ""]) == "killed"
    assert last_error([]) == "it printed nothing to stderr"


async def test_proxy_routes_aliases_and_drives_runtime_lora(tmp_path: Path) -> None:
    settings = InferenceSettings(backend="vllm", vllm_port=free_port())
    command = vllm_command(settings, "base-model", "base")
    command[:2] = [sys.executable, str(STANDIN)]  # the stand-in instead of the `vllm` executable
    url = f"http://127.0.0.1:{settings.vllm_port}"
    process = VllmProcess(command, url)
    process.start(timeout_s=30)
    registry = ModelRegistry(VllmAdapters(url), "base")
    http = HttpServer(create_proxy_app(registry, url), "127.0.0.1", 0)
    await http.start()
    try:
        client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{http.port}/v1", api_key="x", max_retries=0)
        ask = {"messages": [{"role": "user", "content": "hi"}]}
        first = await client.chat.completions.create(model="agent", **ask)
        assert first.choices[0].message.content.startswith("served by base")
        assert "--enable-lora" in first.choices[0].message.content

        (tmp_path / "adapter").mkdir()
        registry.load("cand-1", str(tmp_path / "adapter"))
        registry.set_alias("agent", "cand-1")
        routed = await client.chat.completions.create(model="agent", **ask)
        assert routed.choices[0].message.content.startswith("served by cand-1")
        with pytest.raises(InvalidArgument, match="vllm refused"):
            registry.load("bad", str(tmp_path / "missing"))
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="unknown", **ask)
        process.stop()  # vLLM gone: the proxy answers as a gateway, not with its own crash
        with pytest.raises(openai.APIStatusError, match="did not answer") as down:
            await client.chat.completions.create(model="agent", **ask)
        assert down.value.status_code == 502
        async with httpx.AsyncClient() as plain:
            assert (await plain.get(f"http://127.0.0.1:{http.port}/health")).status_code == 503
        await client.close()
    finally:
        await http.stop()
        process.stop()
    with pytest.raises(Unavailable):
        wait_ready(url, timeout_s=1)


def test_parsers_and_template_are_the_model_familys_and_a_setting_overrides_them(tmp_path: Path) -> None:
    settings = InferenceSettings(backend="vllm", TRACEWHEEL_HOME=tmp_path)
    template = write_chat_template(settings, "/data/models/Qwen3-4B", tmp_path / "inference")
    command = " ".join(vllm_command(settings, "/data/models/Qwen3-4B", "Qwen3-4B", template))

    assert template is not None and template.read_text() == load_template("qwen3")  # what the trainer renders
    assert f"--chat-template {template}" in command
    assert "--tool-call-parser hermes" in command and "--reasoning-parser qwen3" in command

    chosen = InferenceSettings(backend="vllm", tool_call_parser="qwen3_xml", reasoning_parser="", chat_template="")
    command = " ".join(vllm_command(chosen, "/data/models/Qwen3-4B", "Qwen3-4B"))
    assert "--tool-call-parser qwen3_xml" in command and "--reasoning-parser" not in command
    # a model in no family keeps its tokenizer's own template
    assert write_chat_template(settings, "/data/models/Llama-3.1-8B", tmp_path / "other") is None
