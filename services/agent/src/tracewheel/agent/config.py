"""Settings of the agent service (environment variables TW_AGENT_*)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tracewheel.core.settings import ServiceSettings


class AgentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TW_AGENT_", extra="forbid", frozen=True)

    grpc_port: int = Field(default=50053, ge=0, le=65535, description="gRPC port.")
