"""Shared fixtures: the task site, one chromium (gateway SessionManager) for the whole run,
the tiny test model and a running inference service on it (pattern of services/inference).

Tests that use the browser run in the session's event loop
(`pytestmark = pytest.mark.asyncio(loop_scope="session")`), so they share one chromium.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
import uvicorn

from tracewheel.agent.tasksite import create_app
from tracewheel.agent.tools import LocalGateway
from tracewheel.core.health import wait_healthy
from tracewheel.core.natsserver import free_port

CACHE = Path(os.environ.get("TRACEWHEEL_TEST_CACHE", Path.home() / ".cache" / "tracewheel-tests"))
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


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def gateway(site_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalGateway]:
    """The gateway's SessionManager in this process, its URL policy allowing the task site."""
    from tracewheel.gateway.policy import UrlPolicy
    from tracewheel.gateway.session import BrowserConfig, SessionManager

    if CHROMIUM is None:
        pytest.skip("Debian chromium is not installed")
    config = BrowserConfig(
        executable_path=CHROMIUM,
        reap_interval_s=0,
        attachments_dir=tmp_path_factory.mktemp("attachments"),
        policy=UrlPolicy(allow_hosts=(site_url.removeprefix("http://"),)),
    )
    async with SessionManager(config) as manager:
        yield LocalGateway(manager)


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """A random 2-layer Qwen3 on the SmolLM2 tokenizer, with the project's serving template."""
    from tracewheel.inference.templates import SERVING_TEMPLATE, load_template
    from tracewheel.inference.testing import build_tiny_model

    return build_tiny_model(CACHE / "tiny-qwen3", CACHE, chat_template=load_template(SERVING_TEMPLATE))


@dataclass
class RunningService:
    http_url: str
    grpc_address: str
    home: Path


@pytest.fixture(scope="session")
def inference_service(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """`python -m tracewheel.inference` on the tiny model, as the supervisor starts it."""
    from tracewheel.inference.templates import SERVING_TEMPLATE

    home = tmp_path_factory.mktemp("inference-home")
    http_port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TW_INFERENCE_")} | {
        "TRACEWHEEL_HOME": str(home),
        "TW_INFERENCE_MODEL": str(tiny_model_dir),
        "TW_INFERENCE_CHAT_TEMPLATE": SERVING_TEMPLATE,
        "TW_INFERENCE_HTTP_PORT": str(http_port),
        "TW_INFERENCE_GRPC_PORT": str(grpc_port),
        "TW_INFERENCE_DEFAULT_MAX_TOKENS": "16",
        "TW_INFERENCE_CONSUME_EVENTS": "false",
    }
    log = (home / "service.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tracewheel.inference"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        if not wait_healthy(f"127.0.0.1:{grpc_port}", timeout_s=120):
            raise RuntimeError("inference did not start:\n" + (home / "service.log").read_text()[-3000:])
        yield RunningService(f"http://127.0.0.1:{http_port}/v1", f"127.0.0.1:{grpc_port}", home)
    finally:
        process.terminate()
        process.wait(30)
        log.close()
