from __future__ import annotations

import json
import logging

import pytest
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict

from tracewheel.core.errors import ConfigError
from tracewheel.core.logging import JsonFormatter
from tracewheel.core.settings import ServiceSettings, load_settings, unknown_variables


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TW_DEMO_", extra="forbid", frozen=True)

    grpc_port: int = Field(default=50099, ge=0, le=65535)
    model_dir: str = Field(description="required: no default")


def test_reads_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_DEMO_MODEL_DIR", "/models/x")
    monkeypatch.setenv("TW_DEMO_GRPC_PORT", "6000")
    monkeypatch.setenv("TRACEWHEEL_HOME", "/tmp/twhome")
    settings = load_settings(DemoSettings)
    assert (settings.model_dir, settings.grpc_port, str(settings.home)) == ("/models/x", 6000, "/tmp/twhome")


def test_unknown_variable_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_DEMO_MODEL_DIR", "/m")
    monkeypatch.setenv("TW_DEMO_MODLE_DIR", "/typo")
    with pytest.raises(ConfigError, match=r"unknown setting.*TW_DEMO_MODLE_DIR"):
        load_settings(DemoSettings)


def test_missing_required_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TW_DEMO_MODEL_DIR", raising=False)
    with pytest.raises(ConfigError, match="TW_DEMO_MODEL_DIR: Field required"):
        load_settings(DemoSettings)


def test_invalid_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_DEMO_MODEL_DIR", "/m")
    monkeypatch.setenv("TW_DEMO_GRPC_PORT", "seventy")
    with pytest.raises(ConfigError, match="TW_DEMO_GRPC_PORT"):
        load_settings(DemoSettings)


def test_production_requires_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_DEMO_MODEL_DIR", "/m")
    monkeypatch.setenv("TW_DEMO_ENVIRONMENT", "production")
    with pytest.raises(ConfigError, match="TW_DEMO_AUTH_TOKEN is required"):
        load_settings(DemoSettings)
    monkeypatch.setenv("TW_DEMO_AUTH_TOKEN", "s3cret")
    monkeypatch.setenv("TW_DEMO_NATS_USER", "dataset")
    monkeypatch.setenv("TW_DEMO_NATS_PASSWORD", "tw0123456789abcdef")
    assert load_settings(DemoSettings).auth_token.get_secret_value() == "s3cret"


def test_production_requires_nats_credentials_in_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_DEMO_MODEL_DIR", "/m")
    monkeypatch.setenv("TW_DEMO_ENVIRONMENT", "production")
    monkeypatch.setenv("TW_DEMO_AUTH_TOKEN", "s3cret")
    with pytest.raises(ConfigError, match="TW_DEMO_NATS_USER and TW_DEMO_NATS_PASSWORD are required"):
        load_settings(DemoSettings)
    monkeypatch.setenv("TW_DEMO_NATS_USER", "dataset")
    with pytest.raises(ConfigError, match="nats_user and nats_password go together"):
        load_settings(DemoSettings)
    monkeypatch.setenv("TW_DEMO_NATS_PASSWORD", "tw0123456789abcdef")
    assert load_settings(DemoSettings).nats_password.get_secret_value() == "tw0123456789abcdef"


class LimitOptions(BaseModel):
    """A domain module's options, declared once (as the agent's LoopOptions)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(default=3, ge=1)


class OptionSettings(ServiceSettings, LimitOptions):
    model_config = SettingsConfigDict(env_prefix="TW_OPT_", extra="forbid", frozen=True)


def test_options_a_service_inherits_keep_their_flat_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_OPT_LIMIT", "5")
    assert load_settings(OptionSettings).limit == 5
    monkeypatch.setenv("TW_OPT_LIMT", "5")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) TW_OPT_LIMT; known: .*TW_OPT_LIMIT"):
        load_settings(OptionSettings)


def test_unknown_variables_are_those_under_the_prefix_that_name_no_field() -> None:
    env = {"TW_OPT_LIMIT": "1", "TW_OPT_LIMT": "2", "TW_OTHER_X": "3", "PATH": "/bin"}
    assert unknown_variables(OptionSettings, env) == ["TW_OPT_LIMT"]


def test_json_formatter_writes_one_object_with_extras() -> None:
    record = logging.LogRecord("tracewheel.x", logging.WARNING, __file__, 1, "loaded %s in %.1f s", ("a1", 0.25), None)
    record.adapter = "a1"
    entry = json.loads(JsonFormatter("inference").format(record))
    assert entry["msg"] == "loaded a1 in 0.2 s"
    assert (entry["level"], entry["service"], entry["adapter"]) == ("WARNING", "inference", "a1")
