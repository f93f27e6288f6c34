"""Where the CLI finds the services: flags, then environment, then the local stack."""

from __future__ import annotations

import os
from dataclasses import dataclass

from tracewheel.cli.stack import SERVICES, StackInfo, home_dir

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

    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")] if self.token else []


def resolve_endpoints(overrides: dict[str, str | None] | None = None) -> Endpoints:
    """A running local stack's addresses (stack.json), else the default ports; env and flags win."""
    info = StackInfo.read(home_dir())
    grpc = {spec.name: f"127.0.0.1:{spec.grpc_port}" for spec in SERVICES}
    if info is not None:
        grpc |= {name: f"127.0.0.1:{service['grpc_port']}" for name, service in info.services.items()}
    grpc |= {name: os.environ[variable] for name, variable in ENV.items() if os.environ.get(variable)}
    grpc |= {name: value for name, value in (overrides or {}).items() if value}
    return Endpoints(grpc, os.environ.get(TOKEN_ENV) or None)
