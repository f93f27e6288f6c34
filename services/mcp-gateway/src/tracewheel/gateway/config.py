"""Settings of the gateway service (environment variables TW_GATEWAY_*)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tracewheel.core.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TW_GATEWAY_", extra="forbid", frozen=True)

    grpc_port: int = Field(default=50052, ge=0, le=65535, description="gRPC port.")
    http_host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    http_port: int = Field(default=8100, ge=0, le=65535, description="HTTP port.")
