"""Settings base: one pydantic-settings class per service, one env prefix per service.

`load_settings` refuses to start a service on a missing or invalid setting, and on an
unknown variable under the service's prefix (a typo like TW_INFERENCE_MODLE would otherwise
be ignored silently); the error names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tracewheel.core.errors import ConfigError

HOME_VARIABLE = "TRACEWHEEL_HOME"
DEFAULT_HOME = Path(".tracewheel")


class ServiceSettings(BaseSettings):
    """What every service has. Subclasses set `env_prefix` (e.g. `TW_DATASET_`)."""

    model_config = SettingsConfigDict(env_prefix="TW_", extra="forbid", frozen=True)

    home: Path = Field(
        default=DEFAULT_HOME,
        validation_alias=AliasChoices(HOME_VARIABLE),
        description="State directory shared by the local stack (NATS data, caches, artifacts).",
    )
    environment: Literal["development", "production"] = Field(
        default="development", description="production refuses insecure defaults (no auth token)."
    )
    log_level: str = Field(default="INFO", description="Python logging level name.")
    grpc_host: str = Field(default="127.0.0.1", description="Address the gRPC server binds to.")
    grpc_port: int = Field(default=0, ge=0, le=65535, description="gRPC port; each service sets its default.")
    auth_token: SecretStr | None = Field(
        default=None, description="When set, gRPC calls must send `authorization: Bearer <token>`."
    )
    nats_url: str = Field(default="nats://127.0.0.1:4222", description="NATS server with JetStream.")

    @model_validator(mode="after")
    def _secure_outside_development(self) -> ServiceSettings:
        if self.environment == "production" and self.auth_token is None:
            prefix = self.model_config.get("env_prefix", "")
            raise ValueError(f"{prefix}AUTH_TOKEN is required when {prefix}ENVIRONMENT=production")
        return self


S = TypeVar("S", bound=ServiceSettings)


def _variable(settings_cls: type[BaseSettings], field: str) -> str:
    info = settings_cls.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, AliasChoices):
        return str(info.validation_alias.choices[0])
    return f"{settings_cls.model_config.get('env_prefix', '')}{field}".upper()


def setting_variables(settings_cls: type[BaseSettings]) -> list[str]:
    """The environment variable of each of the class's fields, sorted."""
    return sorted({_variable(settings_cls, name) for name in settings_cls.model_fields})


def unknown_variables(settings_cls: type[BaseSettings], env: Mapping[str, str]) -> list[str]:
    """The variables in `env` under the class's prefix that name none of its fields (typos), sorted."""
    prefix = str(settings_cls.model_config.get("env_prefix", "")).upper()
    known = set(setting_variables(settings_cls))
    return sorted(key for key in env if key.upper().startswith(prefix) and key.upper() not in known)


def load_settings(settings_cls: type[S]) -> S:
    """Reads a service's settings from the environment.

    Raises:
        ConfigError: naming each unknown, missing or invalid variable.
    """
    unknown = unknown_variables(settings_cls, os.environ)
    if unknown:
        known = ", ".join(setting_variables(settings_cls))
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {known}")
    try:
        return settings_cls()
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            field = str(error["loc"][0]) if error["loc"] else ""
            name = _variable(settings_cls, field) if field else settings_cls.__name__
            problems.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
