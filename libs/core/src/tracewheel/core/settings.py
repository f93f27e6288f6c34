"""Settings base: one pydantic-settings class per service, one env prefix per service.

`load_settings` refuses to start a service on a missing or invalid setting, and on an
unknown variable under the service's prefix (a typo like TW_INFERENCE_MODLE would otherwise
be ignored silently); the error names the variable.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tracewheel.core.errors import ConfigError
from tracewheel.core.trace_size import DEFAULT_MAX_TRACE_BYTES, MAX_TRACE_BYTES_VARIABLE

HOME_VARIABLE = "TRACEWHEEL_HOME"
DEFAULT_HOME = Path(".tracewheel")


class NatsOptions(BaseModel):
    """How a service reaches NATS, declared once: every service's settings inherit these, so each is
    also `TW_<SERVICE>_<NAME>`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nats_url: str = Field(
        default="nats://127.0.0.1:4222", description="NATS server with JetStream; tls://host:port for TLS."
    )
    nats_user: str = Field(
        default="", description="The service's NATS user (nats_auth.ROLES); '' connects anonymously."
    )
    nats_password: SecretStr | None = Field(default=None, description="The NATS user's password.")
    nats_tls_ca: Path | None = Field(default=None, description="CA file that signed the NATS server's certificate.")
    nats_tls_cert: Path | None = Field(
        default=None, description="Client certificate, for a NATS server that verifies clients (with nats_tls_key)."
    )
    nats_tls_key: Path | None = Field(default=None, description="The client certificate's private key.")
    nats_stream_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="JetStream replicas of each stream the service declares: 3 on a 3-node NATS cluster (the k8s "
        "base), so a stream outlives a node; a stream found with fewer is raised to it.",
    )

    @model_validator(mode="after")
    def _nats_pairs(self) -> NatsOptions:
        if bool(self.nats_user) != (self.nats_password is not None):
            raise ValueError("nats_user and nats_password go together: set both or neither")
        if (self.nats_tls_cert is None) != (self.nats_tls_key is None):
            raise ValueError("nats_tls_cert and nats_tls_key go together: set both or neither")
        return self

    def nats_tls(self) -> ssl.SSLContext | None:
        """The TLS context for the connection (None: plain TCP)."""
        if self.nats_tls_ca is None and self.nats_tls_cert is None and not self.nats_url.startswith("tls://"):
            return None
        context = ssl.create_default_context(cafile=str(self.nats_tls_ca) if self.nats_tls_ca else None)
        if self.nats_tls_cert is not None and self.nats_tls_key is not None:
            context.load_cert_chain(str(self.nats_tls_cert), str(self.nats_tls_key))
        return context


class ServiceSettings(BaseSettings, NatsOptions):
    """What every service has. Subclasses set `env_prefix` (e.g. `TW_DATASET_`)."""

    uses_nats: ClassVar[bool] = True  # production then requires NATS credentials

    model_config = SettingsConfigDict(env_prefix="TW_", extra="forbid", frozen=True)

    home: Path = Field(
        default=DEFAULT_HOME,
        validation_alias=AliasChoices(HOME_VARIABLE),
        description="State directory shared by the local stack (NATS data, caches, artifacts).",
    )
    environment: Literal["development", "production"] = Field(
        default="development", description="production refuses insecure defaults (no auth token)."
    )
    max_trace_bytes: int = Field(
        default=DEFAULT_MAX_TRACE_BYTES,
        ge=1024,
        validation_alias=AliasChoices(MAX_TRACE_BYTES_VARIABLE),
        description="The largest trace (its JSON, in bytes) any path accepts; set the same on every service "
        "and the CLI (trace_size.py). NATS and gRPC carry wire_limit() of it.",
    )
    log_level: str = Field(default="INFO", description="Python logging level name.")
    grpc_host: str = Field(default="127.0.0.1", description="Address the gRPC server binds to.")
    grpc_port: int = Field(default=0, ge=0, le=65535, description="gRPC port; each service sets its default.")
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of a small HTTP listener serving Prometheus `/metrics` on grpc_host (0: off); services "
        "with an HTTP server also serve /metrics there.",
    )
    auth_token: SecretStr | None = Field(
        default=None,
        description="When set, every gRPC call and HTTP request (but health) must send `authorization: Bearer "
        "<token>`; the curation UI signs in with it.",
    )

    @model_validator(mode="after")
    def _secure_outside_development(self) -> ServiceSettings:
        if self.environment == "production" and self.auth_token is None:
            prefix = self.model_config.get("env_prefix", "")
            raise ValueError(
                f"{prefix}AUTH_TOKEN is required when {prefix}ENVIRONMENT=production: no listener (gRPC or HTTP) "
                "starts without one"
            )
        if self.environment == "production" and self.uses_nats and not self.nats_user:
            prefix = self.model_config.get("env_prefix", "")
            raise ValueError(
                f"{prefix}NATS_USER and {prefix}NATS_PASSWORD are required when {prefix}ENVIRONMENT=production"
            )
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
