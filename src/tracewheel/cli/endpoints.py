"""Where the CLI finds the services: flags, then environment, then the local stack."""

from __future__ import annotations

import os
from contextvars import ContextVar
from dataclasses import dataclass

import grpc

from tracewheel.cli.stack import SERVICES, StackInfo, home_dir
from tracewheel.core.grpc_server import message_size_options
from tracewheel.core.trace_size import configured_max_trace_bytes, wire_limit

# environment variables that point the CLI at remote services
ENV = {
    "inference": "TRACEWHEEL_INFERENCE_GRPC",
    "mcp-gateway": "TRACEWHEEL_GATEWAY_GRPC",
    "agent": "TRACEWHEEL_AGENT_GRPC",
    "dataset": "TRACEWHEEL_DATASET_GRPC",
    "trainer": "TRACEWHEEL_TRAINER_GRPC",
}
TOKEN_ENV = "TRACEWHEEL_TOKEN"  # sent as `authorization: Bearer <token>` when set


@dataclass(frozen=True)
class Endpoints:
    grpc: dict[str, str]
    token: str | None

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()


def resolve_endpoints(overrides: dict[str, str | None] | None = None) -> Endpoints:
    """A running local stack's addresses (stack.json), else the default ports; env and flags win."""
    info = StackInfo.read(home_dir())
    grpc = {spec.name: f"127.0.0.1:{spec.grpc_port}" for spec in SERVICES}
    if info is not None:
        grpc |= {name: f"127.0.0.1:{service['grpc_port']}" for name, service in info.services.items()}
    grpc |= {name: os.environ[variable] for name, variable in ENV.items() if os.environ.get(variable)}
    grpc |= {name: value for name, value in (overrides or {}).items() if value}
    return Endpoints(grpc, os.environ.get(TOKEN_ENV) or None)


@dataclass(frozen=True)
class Target:
    """The service a command called, named in its error message."""

    service: str
    address: str


_last_target: ContextVar[Target | None] = ContextVar("last_target", default=None)


def connect(service: str, address: str | None = None) -> tuple[grpc.Channel, tuple[tuple[str, str], ...]]:
    """A channel to `service` (`address`, else as `resolve_endpoints` finds it) and the call
    metadata (the bearer token); the target is kept for the error message of a failed call."""
    endpoints = resolve_endpoints({service: address})
    target = endpoints.grpc[service]
    _last_target.set(Target(service, target))
    # a message may carry the largest trace (core.trace_size: the same limit as the services')
    options = message_size_options(wire_limit(configured_max_trace_bytes()))
    return grpc.insecure_channel(target, options=options), endpoints.metadata()


def last_target() -> Target | None:
    """The service the last `connect` went to (None: none yet)."""
    return _last_target.get()
