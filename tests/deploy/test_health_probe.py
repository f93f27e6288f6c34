"""`python -m tracewheel.core.health ADDRESS`: the containers' health probe."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tracewheel.core.health import main


@pytest.fixture
def health_server() -> Iterator[tuple[str, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(None)


def test_serving_exits_zero_anything_else_one(health_server):
    address, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert main([address]) == 0
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert main([address]) == 1
    assert main([address, "--service", "tracewheel.v1.Unknown", "--timeout", "1"]) == 1


def test_nothing_listening_exits_one():
    assert main(["127.0.0.1:1", "--timeout", "0.5"]) == 1


def test_runs_as_a_module(health_server):
    address, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    result = subprocess.run([sys.executable, "-m", "tracewheel.core.health", address], timeout=30, check=False)
    assert result.returncode == 0
