"""`python -m tracewheel.gateway`: serves gRPC and /mcp, and SIGTERM leaves no child behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tracewheel.gateway.aggregate import ServerSpec
from tracewheel.v1 import gateway_pb2, gateway_pb2_grpc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_serving(address: str, process: subprocess.Popen[bytes], deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                grpc.channel_ready_future(channel).result(timeout=1)
            except grpc.FutureTimeoutError:
                continue  # not listening yet (chromium and the MCP servers start first)
            reply = health.Check(health_pb2.HealthCheckRequest(service="tracewheel.v1.Gateway"), timeout=5)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
    raise AssertionError("the gateway did not become SERVING")


@pytest.mark.slow
def test_serves_then_sigterm_leaves_no_process(tmp_path: Path, site: Any, playwright_mcp: ServerSpec) -> None:
    spec = playwright_mcp
    servers = tmp_path / "servers.json"
    servers.write_text(json.dumps({"mcpServers": {"pw": {"command": spec.command, "args": list(spec.args)}}}))
    grpc_port, http_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TW_GATEWAY_")}
    env |= {
        "TRACEWHEEL_HOME": str(tmp_path),
        "TW_GATEWAY_GRPC_PORT": str(grpc_port),
        "TW_GATEWAY_HTTP_PORT": str(http_port),
        "TW_GATEWAY_MCP_SERVERS_FILE": str(servers),
        "TW_GATEWAY_ALLOW_HOSTS": json.dumps([f"127.0.0.1:{site.port}"]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tracewheel.gateway"], env=env, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        _wait_serving(f"127.0.0.1:{grpc_port}", process)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            session_id = stub.OpenSession(gateway_pb2.OpenSessionRequest()).session_id
            for name in ("browser_navigate", "pw__browser_navigate"):
                reply = stub.CallTool(
                    gateway_pb2.CallToolRequest(
                        session_id=session_id, name=name, arguments_json=json.dumps({"url": site.url + "/form"})
                    )
                )
                assert not reply.is_error, reply.text
        children = psutil.Process(process.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "chrom" in names and "playwright-mcp" in names

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"left behind: {[p.cmdline() for p in alive]}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stderr:
            process.stderr.close()
