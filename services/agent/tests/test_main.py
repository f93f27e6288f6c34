"""`python -m tracewheel.agent` starts, serves health and the task site, and stops on SIGTERM."""

import os
import subprocess
import sys

import httpx
import pytest

from tracewheel.core.health import wait_healthy
from tracewheel.core.natsserver import free_port

pytestmark = pytest.mark.slow


def test_service_starts_with_the_task_site(tmp_path) -> None:
    grpc_port, site_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TW_AGENT_")} | {
        "TRACEWHEEL_HOME": str(tmp_path),
        "TW_AGENT_GRPC_PORT": str(grpc_port),
        "TW_AGENT_TASK_SITE_PORT": str(site_port),
        "TW_AGENT_PUBLISH_TRACES": "false",
        "TW_AGENT_GATEWAY_ADDRESS": "127.0.0.1:1",  # connected lazily; this test runs no task
    }
    log = (tmp_path / "agent.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tracewheel.agent"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        assert wait_healthy(f"127.0.0.1:{grpc_port}", timeout_s=60, service="tracewheel.v1.Agent"), (
            tmp_path / "agent.log"
        ).read_text()
        home = httpx.get(f"http://127.0.0.1:{site_port}/")
        assert home.status_code == 200 and "Tracewheel Shop" in home.text
    finally:
        process.terminate()
        assert process.wait(30) == 0 or process.returncode in (-15, 130)
        log.close()
