"""Settings of the trainer service (environment variables TW_TRAINER_*)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tracewheel.core.settings import ServiceSettings


class TrainerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TW_TRAINER_", extra="forbid", frozen=True)

    grpc_port: int = Field(default=50055, ge=0, le=65535, description="gRPC port.")
