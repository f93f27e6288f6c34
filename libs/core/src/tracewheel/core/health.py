"""Client side of the standard gRPC health service.

`python -m tracewheel.core.health ADDRESS` is the containers' health probe (Dockerfile
HEALTHCHECK, compose): exit status 0 when the server reports SERVING, 1 otherwise.
"""

from __future__ import annotations

import argparse
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check_health(address: str, service: str = "", timeout_s: float = 1.0) -> bool:
    """True when the server at `address` reports SERVING for `service` ("" = the server)."""
    try:
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply: health_pb2.HealthCheckResponse = stub.Check(  # type: ignore[attr-defined]  # stub lists no methods
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


def main(argv: list[str] | None = None) -> int:
    """The probe's command line; returns the exit status (0: SERVING, 1: anything else)."""
    parser = argparse.ArgumentParser(prog="python -m tracewheel.core.health", description="gRPC health probe")
    parser.add_argument("address", help="host:port of the gRPC server, e.g. 127.0.0.1:50051")
    parser.add_argument("--service", default="", help="service name to check (default: the whole server)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")
    args = parser.parse_args(argv)
    return 0 if check_health(args.address, args.service, timeout_s=args.timeout) else 1


if __name__ == "__main__":
    raise SystemExit(main())
