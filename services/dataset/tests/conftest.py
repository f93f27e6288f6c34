"""Shared fixtures: a store in a temporary directory and a builder of realistic agent traces."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import uvicorn

from tracewheel.core.grpc_server import GrpcServer
from tracewheel.core.natsserver import free_port
from tracewheel.core.trace import Trace
from tracewheel.dataset.build import BuildResult
from tracewheel.dataset.http_api import create_app
from tracewheel.dataset.pgserver import PostgresServer, create_database, drop_database, postgres_bin_dir
from tracewheel.dataset.records import IngestResult
from tracewheel.dataset.server import DatasetServicer
from tracewheel.dataset.store import TraceStore
from tracewheel.v1 import dataset_pb2_grpc

GUIDANCE = "You are a careful browsing agent. Take a snapshot before you click."

TraceFactory = Callable[..., dict[str, Any]]


def _agent_run(trace_id: str, answer: str, url: str, created_at: str) -> dict[str, Any]:
    call_id = f"chatcmpl-tool-{trace_id}"
    return {
        "id": trace_id,
        "created_at": created_at,
        "model": "Qwen/Qwen3-4B",
        "tools": [{"type": "function", "function": {"name": "browser_navigate", "description": "Go to a URL"}}],
        "messages": [
            {"role": "system", "content": GUIDANCE},
            {"role": "user", "content": "What is the first product in the shop?"},
            {
                "role": "assistant",
                "content": "",
                "reasoning_content": "Open the shop first.",
                "tool_calls": [
                    {"id": call_id, "function": {"name": "browser_navigate", "arguments": json.dumps({"url": url})}}
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "name": "browser_navigate", "content": "- link 'Red kettle'"},
            {"role": "assistant", "content": answer, "reasoning_content": "It is listed first."},
        ],
        "task": {"suite": "shop", "task_id": "first-product", "prompt": "What is the first product in the shop?"},
        "outcome": {"verdict": "passed", "score": 1.0, "final_answer": answer},
        "metadata": {"guidance_prompt": GUIDANCE, "source": "agent"},
    }


@pytest.fixture
def make_trace() -> TraceFactory:
    """Builds the plain data of a one-query agent run; keyword arguments override its parts.

    `verdict`, `suite`, `task_id`, `final_answer` and metadata keys (`parse_errors`, ...) go
    where they belong; anything else replaces the top-level key.
    """

    def build(
        trace_id: str = "run-1",
        *,
        answer: str = "The Red kettle.",
        url: str = "http://127.0.0.1:8400",
        created_at: str = "2026-11-01T10:00:00Z",
        verdict: str = "passed",
        suite: str = "shop",
        task_id: str = "first-product",
        metadata: dict[str, Any] | None = None,
        **top_level: Any,
    ) -> dict[str, Any]:
        data = _agent_run(trace_id, answer, url, created_at)
        data["outcome"]["verdict"] = verdict
        data["task"].update(suite=suite, task_id=task_id)
        data["metadata"].update(metadata or {})
        data.update(top_level)
        return data

    return build


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TraceStore]:
    with TraceStore(tmp_path / "traces.db") as opened:
        yield opened


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server's URL: TW_TEST_POSTGRES_URL, else a throwaway cluster (initdb + pg_ctl).

    Without either the PostgreSQL variants are skipped, except in CI (CI set), where they must run.
    """
    url = os.environ.get("TW_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if postgres_bin_dir() is None:
        missing = "no PostgreSQL: TW_TEST_POSTGRES_URL is unset and initdb/pg_ctl are missing (Debian: postgresql)"
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; CI runs the store's tests on PostgreSQL too (scripts/system-deps.sh installs it)")
        pytest.skip(missing)
    server = PostgresServer().start()
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh database for one test, dropped after it."""
    url = create_database(postgres_server)
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TraceStore]:
    """The store on SQLite, then on PostgreSQL: the store's own tests run on both."""
    location = str(tmp_path / "traces.db") if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    with TraceStore(location) as opened:
        yield opened


@pytest.fixture
def fixtures_dir() -> Path:
    return Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    """The SmolLM2 tokenizer of the tiny test model (converted from the GGUF once per cache dir)."""
    from transformers import AutoTokenizer

    from tracewheel.inference.testing import TEST_CACHE, smollm2_tokenizer_dir

    return AutoTokenizer.from_pretrained(smollm2_tokenizer_dir(TEST_CACHE))


@pytest.fixture(scope="session")
def train_template() -> str:
    from tracewheel.core.chat import TRAINING_TEMPLATE, load_template

    return load_template(TRAINING_TEMPLATE)


@pytest.fixture
def make_builder(store: TraceStore, tokenizer: Any, train_template: str, tmp_path: Path) -> Callable[..., Any]:
    """Builds a DatasetBuilder over the test store writing under `tmp_path/datasets`."""
    from tracewheel.dataset.build import BuildConfig, DatasetBuilder

    def build(**config: Any) -> DatasetBuilder:
        options = {"base_model": "tiny-qwen3", "chat_template": train_template, "eval_ratio": 0.0, **config}
        return DatasetBuilder(store, tokenizer, BuildConfig(**options), tmp_path / "datasets")

    return build


@pytest.fixture
async def servers(store: TraceStore, make_builder: Callable[..., Any]) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """REST (uvicorn) and gRPC servers on free ports; yields an httpx client and a Dataset stub."""
    builder = make_builder()

    async def ingest(trace: Trace) -> IngestResult:
        return store.ingest(trace)

    async def build(*, force: bool) -> BuildResult:
        return await asyncio.to_thread(builder.build)

    grpc_server = GrpcServer(["tracewheel.v1.Dataset"])
    dataset_pb2_grpc.add_DatasetServicer_to_server(DatasetServicer(store, ingest, build), grpc_server.server)
    grpc_port = grpc_server.bind("127.0.0.1", 0)
    await grpc_server.start()
    http_port = free_port()
    http = uvicorn.Server(uvicorn.Config(create_app(store, build), host="127.0.0.1", port=http_port, log_config=None))
    serving = asyncio.create_task(http.serve())
    async with asyncio.timeout(10):
        while not http.started:
            await asyncio.sleep(0.02)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as client:
        yield client, dataset_pb2_grpc.DatasetStub(channel)
    await channel.close()
    http.should_exit = True
    await serving
    await grpc_server.stop(0)


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    """A headless Chromium page at the desktop size (tests/web.py)."""
    from .web import open_page

    async with open_page() as opened:
        yield opened


@pytest.fixture
async def peers(tmp_path: Path) -> AsyncIterator[Any]:
    """The inference and agent servicers the deployment pages read (tests/console_deployment_peers.py)."""
    from .console_deployment_peers import deployment_peers

    async with deployment_peers(tmp_path) as running:
        yield running


@pytest.fixture
async def trainer(tmp_path: Path) -> AsyncIterator[Any]:
    """The trainer's servicer over a real JobQueue the jobs pages read (tests/console_job_peers.py)."""
    from .console_job_peers import running_trainer

    async with running_trainer(tmp_path) as running:
        yield running
