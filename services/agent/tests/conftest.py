"""Shared fixtures: the task site, one chromium (gateway SessionManager) for the whole run,
the tiny test model and a running inference service on it (pattern of services/inference).

Tests that use the browser run in the session's event loop
(`pytestmark = pytest.mark.asyncio(loop_scope="session")`), so they share one chromium.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn

from tracewheel.agent.tasksite import create_app
from tracewheel.agent.tools import LocalGateway
from tracewheel.core.natsserver import free_port

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")


@pytest.fixture(scope="session")
def site_url() -> Iterator[str]:
    """The task site (seed 0, 300 items) on a free loopback port, served from a thread."""
    port = free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "task site did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


async def _in_process_gateway(
    site_url: str, attachments: Path, snapshot_style: str, snapshot_mode: str = "full"
) -> AsyncIterator[LocalGateway]:
    from tracewheel.gateway.browser_options import BrowserConfig
    from tracewheel.gateway.session import SessionManager

    if CHROMIUM is None:
        pytest.skip("Debian chromium is not installed")
    config = BrowserConfig(
        chromium_path=CHROMIUM,
        reap_interval_s=0,
        attachments_dir=attachments,
        allow_hosts=(site_url.removeprefix("http://"),),
        snapshot_style=snapshot_style,  # type: ignore[arg-type]
        snapshot_mode=snapshot_mode,  # type: ignore[arg-type]
    )
    async with SessionManager(config) as manager:
        yield LocalGateway(manager)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def gateway(site_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalGateway]:
    """The gateway's SessionManager in this process, its URL policy allowing the task site."""
    async for gateway in _in_process_gateway(site_url, tmp_path_factory.mktemp("attachments"), "full"):
        yield gateway


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def demo_gateway(site_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalGateway]:
    """As `gateway`, with the demo's snapshots: compact and incremental (a second chromium)."""
    attachments = tmp_path_factory.mktemp("attachments")
    async for gateway in _in_process_gateway(site_url, attachments, "compact", "incremental"):
        yield gateway


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """A random 2-layer Qwen3 on the SmolLM2 tokenizer, with the project's serving template."""
    from tracewheel.inference.testing import tiny_test_model

    return tiny_test_model()


@pytest.fixture(scope="session")
def inference_service(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`python -m tracewheel.inference` on the tiny model, as the supervisor starts it."""
    from tracewheel.inference.testing import running_inference_service

    home = tmp_path_factory.mktemp("inference-home")
    with running_inference_service(tiny_model_dir, home, {"TW_INFERENCE_DEFAULT_MAX_TOKENS": "16"}) as service:
        yield service
