"""The production backend: the service owns a `vllm serve` process and fronts it.

vLLM does the serving (tool and reasoning parsing with the model family's parsers, `hermes` and
`qwen3` for Qwen3, with the family's serving template; LoRA with runtime loading); this service
keeps the control plane: it starts vLLM with the right flags, waits for
`/health`, drives `/v1/load_lora_adapter` / `/v1/unload_lora_adapter`, and proxies
`/v1/chat/completions` after turning an alias (e.g. `agent`) into the adapter it points at,
since vLLM knows no aliases.

Not exercised here: vLLM itself (needs CUDA). The tests run everything up to the process
boundary against a stand-in HTTP server that speaks the same endpoints (see docs/inference.md).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, TextIO

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tracewheel.core.errors import InvalidArgument, TracewheelError, Unavailable
from tracewheel.core.files import write_text_atomically
from tracewheel.core.http_security import HttpSecurity
from tracewheel.inference.adapters import ModelRegistry
from tracewheel.inference.config import InferenceSettings
from tracewheel.inference.model_store import served_chat_format
from tracewheel.inference.openai_api import LoadAdapterRequest, UnloadAdapterRequest, error_body, guard

log = logging.getLogger(__name__)


CHAT_TEMPLATE_FILE = "chat_template.jinja"


def write_chat_template(settings: InferenceSettings, model: str, folder: Path) -> Path | None:
    """Writes the serving template of `model` (its family's, or TW_INFERENCE_CHAT_TEMPLATE's:
    `model_store.served_chat_format`) to `folder/chat_template.jinja` for vLLM's `--chat-template`,
    so vLLM serves the text the dataset and the trainer render; None when there is none (vLLM then
    uses the tokenizer's own).

    Raises:
        ConfigError: the template setting is neither a shipped template name nor a file.
        OSError: the folder cannot be written.
    """
    template = served_chat_format(settings, model).serving_template
    if template is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomically(folder / CHAT_TEMPLATE_FILE, template)
    return folder / CHAT_TEMPLATE_FILE


def vllm_command(
    settings: InferenceSettings, model: str, served_name: str, chat_template_file: Path | None = None
) -> list[str]:
    """The `vllm serve` command line for production serving with tools, reasoning and LoRA: the
    parsers are the model's chat format's (`model_store.served_chat_format`), the template the one
    `write_chat_template` wrote (`chat_template_file`; None: the tokenizer's own).

    Raises:
        ConfigError: the template setting is neither a shipped template name nor a file.
    """
    chat = served_chat_format(settings, model)
    command = [
        "vllm", "serve", model,
        "--host", "127.0.0.1",
        "--port", str(settings.vllm_port),
        "--served-model-name", served_name,
        "--enable-auto-tool-choice",
        "--enable-prefix-caching",
        "--enable-lora",
        "--max-lora-rank", str(settings.vllm_max_lora_rank),
        "--max-loras", str(settings.vllm_max_loras),
    ]  # fmt: skip
    if settings.dtype != "auto":
        command += ["--dtype", settings.dtype]
    if chat.tool_call_parser:
        command += ["--tool-call-parser", chat.tool_call_parser]
    if chat.reasoning_parser:
        command += ["--reasoning-parser", chat.reasoning_parser]
    if chat_template_file is not None:
        command += ["--chat-template", str(chat_template_file)]
    if settings.speculative_tokens:
        from tracewheel.inference.engine.speculative import PROMPT_LOOKUP_MAX, PROMPT_LOOKUP_MIN  # engine/ loads torch

        speculative = {
            "method": "ngram",
            "num_speculative_tokens": settings.speculative_tokens,
            "prompt_lookup_max": PROMPT_LOOKUP_MAX,
            "prompt_lookup_min": PROMPT_LOOKUP_MIN,
        }
        command += ["--speculative-config", json.dumps(speculative)]
    return command


STDERR_TAIL_LINES = 50
_EXCEPTION_LINE = re.compile(r"^\w+(\.\w+)*(Error|Exception|Exit)\b.*:")


def last_error(lines: Iterable[str]) -> str:
    """The last exception line of a process's output (`RuntimeError: ...`), else its last
    non-empty line, else a note that it printed nothing."""
    kept = [line.strip() for line in lines if line.strip()]
    errors = [line for line in kept if _EXCEPTION_LINE.match(line)]
    if errors:
        return errors[-1]
    return kept[-1] if kept else "it printed nothing to stderr"


def vllm_env() -> dict[str, str]:
    # runtime LoRA loading is off in vLLM unless this is set
    return {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}


class VllmProcess:
    """A child `vllm serve` (own process group, so stopping it reaches its workers).

    Its stderr is passed through line by line and its last lines kept, so a vLLM that exits
    before it is ready is reported with its own error (e.g. no GPU: "Failed to infer device
    type"), not only its exit code.
    """

    def __init__(self, command: list[str], base_url: str) -> None:
        self.command = command
        self.base_url = base_url
        self.process: subprocess.Popen[str] | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._relay: threading.Thread | None = None

    def start(self, timeout_s: float = 900.0) -> None:
        """Starts vLLM and waits until `/health` answers 200.

        Raises:
            Unavailable: vLLM exited (the message quotes its error) or did not become ready in time.
        """
        log.info("starting %s", " ".join(self.command))
        self.process = subprocess.Popen(
            self.command, env=vllm_env(), start_new_session=True, stderr=subprocess.PIPE, text=True, errors="replace"
        )
        self._relay = threading.Thread(target=self._relay_stderr, args=(self.process.stderr,), daemon=True)
        self._relay.start()
        try:
            wait_ready(self.base_url, timeout_s, self.process)
        except Unavailable as exc:
            if self.process.poll() is None:
                raise
            self._relay.join(timeout=5)  # the pipe closes with the process: the tail is complete
            raise Unavailable(f"{exc}: {last_error(self.stderr_tail)}") from None

    def _relay_stderr(self, stream: TextIO) -> None:
        with stream:  # closed at EOF: when vLLM exits
            for line in stream:
                sys.stderr.write(line)
                self.stderr_tail.append(line.rstrip("\n"))

    def stop(self, grace_s: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self._relay is not None:
            self._relay.join(timeout=5)


def wait_ready(base_url: str, timeout_s: float, process: subprocess.Popen[str] | None = None) -> None:
    """Polls `<base_url>/health` until 200.

    Raises:
        Unavailable: the process exited first, or time ran out.
    """
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise Unavailable(f"vllm exited with code {process.returncode} before it was ready")
            try:
                if client.get(f"{base_url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
    raise Unavailable(f"vllm at {base_url} not ready after {timeout_s:.0f} s")


class VllmAdapters:
    """The adapter backend over vLLM's runtime LoRA endpoints."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _post(self, path: str, body: dict[str, str]) -> None:
        try:
            reply = httpx.post(f"{self.base_url}{path}", json=body, timeout=120.0)
        except httpx.TransportError as exc:
            raise Unavailable(f"vllm unreachable at {self.base_url}: {exc}") from None
        if reply.status_code >= 400:
            raise InvalidArgument(f"vllm refused {path}: {reply.text[:500]}")

    def load(self, name: str, path: str, *, first: bool) -> None:
        self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})

    def unload(self, name: str, *, last: bool) -> None:
        self._post("/v1/unload_lora_adapter", {"lora_name": name})


async def _forward_chat(client: httpx.AsyncClient, registry: ModelRegistry, request: Request) -> Response:
    """Forwards a chat completion to vLLM with the model name resolved, relaying a stream as it comes."""
    body = await request.json()
    requested = str(body.get("model", ""))
    body["model"] = registry.resolve(requested) or registry.base_name  # aliases are ours, not vLLM's
    upstream = client.build_request("POST", "/v1/chat/completions", json=body)
    try:
        reply = await client.send(upstream, stream=True)
    except httpx.TransportError as exc:  # vLLM down or restarting: a gateway error, not ours
        message = f"vLLM at {client.base_url} did not answer: {exc or type(exc).__name__}"
        return JSONResponse(error_body(message, 502), status_code=502)
    if not body.get("stream"):
        content = await reply.aread()
        await reply.aclose()
        return Response(content, status_code=reply.status_code, media_type="application/json")

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in reply.aiter_raw():
                yield chunk
        finally:
            await reply.aclose()

    return StreamingResponse(relay(), status_code=reply.status_code, media_type="text/event-stream")


def create_proxy_app(registry: ModelRegistry, vllm_url: str, security: HttpSecurity | None = None) -> FastAPI:
    """The same OpenAI API as the embedded backend, served by vLLM behind it; `security` guards it
    as the embedded one (vLLM itself listens on 127.0.0.1 only)."""
    app = FastAPI(title="tracewheel inference (vLLM)", docs_url=None, redoc_url=None)
    guard(app, security)
    client = httpx.AsyncClient(base_url=vllm_url, timeout=httpx.Timeout(600.0, connect=5.0))

    @app.exception_handler(TracewheelError)
    async def domain_error(request: Request, exc: TracewheelError) -> JSONResponse:
        return JSONResponse(error_body(str(exc), exc.http_status), status_code=exc.http_status)

    @app.get("/health")
    async def health() -> Response:
        try:
            reply = await client.get("/health")
        except httpx.TransportError:
            return Response(status_code=503)  # not ready while vLLM is down
        return Response(status_code=reply.status_code)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = [
            {"id": m.name, "object": "model", "owned_by": "tracewheel", "kind": m.kind, "root": m.target or m.name}
            for m in registry.list()
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/load_lora_adapter")
    async def load(body: LoadAdapterRequest) -> dict[str, Any]:
        model, seconds = registry.load(body.lora_name, body.lora_path)
        return {"name": model.name, "path": model.path, "load_seconds": seconds}

    @app.post("/v1/unload_lora_adapter")
    async def unload(body: UnloadAdapterRequest) -> dict[str, Any]:
        registry.unload(body.lora_name)
        return {"name": body.lora_name, "unloaded": True}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Response:
        return await _forward_chat(client, registry, request)

    return app
