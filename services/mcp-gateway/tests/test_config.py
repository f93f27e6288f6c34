"""GatewaySettings: environment variables onto BrowserConfig and the /mcp host checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracewheel.core.errors import ConfigError
from tracewheel.core.settings import load_settings
from tracewheel.gateway.browser_options import BrowserOptions
from tracewheel.gateway.config import GatewaySettings


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRACEWHEEL_HOME", str(tmp_path))
    settings = load_settings(GatewaySettings)
    config = settings.browser_config()

    assert (settings.grpc_port, settings.http_port) == (50052, 8100)
    assert config.policy.allow_hosts == ("127.0.0.1:8400", "localhost:8400")
    assert config.attachments_dir == tmp_path / "gateway" / "attachments"
    assert settings.mcp_servers_file is None
    assert settings.mcp_hosts(8100) == (
        ["127.0.0.1:8100", "localhost:8100"],
        ["http://127.0.0.1:8100", "http://localhost:8100"],
    )


def test_environment_maps_onto_browser_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_GATEWAY_ALLOW_HOSTS", '["example.com", "127.0.0.1:9000"]')
    monkeypatch.setenv("TW_GATEWAY_MAX_SESSIONS", "3")
    monkeypatch.setenv("TW_GATEWAY_NAVIGATION_TIMEOUT_S", "7.5")
    monkeypatch.setenv("TW_GATEWAY_MAX_RESULT_CHARS", "500")
    monkeypatch.setenv("TW_GATEWAY_MCP_ALLOWED_HOSTS", '["gateway:8100"]')
    config = load_settings(GatewaySettings).browser_config()

    assert config.policy.allow_hosts == ("example.com", "127.0.0.1:9000")
    assert (config.max_sessions, config.timeouts.navigation, config.max_result_chars) == (3, 7.5, 500)
    assert load_settings(GatewaySettings).mcp_hosts(8100)[0] == ["gateway:8100"]


def test_typo_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_GATEWAY_MAX_SESSION", "3")
    with pytest.raises(ConfigError, match="TW_GATEWAY_MAX_SESSION"):
        load_settings(GatewaySettings)


def test_every_browser_option_reaches_the_session_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_GATEWAY_CHROMIUM_PATH", "/opt/chromium")
    monkeypatch.setenv("TW_GATEWAY_SNAPSHOT_STYLE", "compact")
    monkeypatch.setenv("TW_GATEWAY_DENY_HOSTS", '["bad.test"]')
    settings = load_settings(GatewaySettings)
    config = settings.browser_config()

    assert {name: getattr(config, name) for name in BrowserOptions.model_fields} == {
        name: getattr(settings, name) for name in BrowserOptions.model_fields
    }
    assert (config.chromium_path, config.snapshot_style, config.policy.deny_hosts) == (
        "/opt/chromium",
        "compact",
        ("bad.test",),
    )
