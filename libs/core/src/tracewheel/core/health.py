"""Client side of the standard gRPC health service."""

from __future__ import annotations

import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check_health(address: str, service: str = "", timeout_s: float = 1.0) -> bool:
    """True when the server at `address` reports SERVING for `service` ("" = the server)."""
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
    except grpc.RpcError:
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def wait_healthy(address: str, timeout_s: float, service: str = "") -> bool:
    """Polls `check_health` until it succeeds or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check_health(address, service, timeout_s=min(1.0, max(0.1, deadline - time.monotonic()))):
            return True
        time.sleep(0.1)
    return False
