"""Settings of the gateway service (environment variables TW_GATEWAY_*).

Lists are JSON in the environment: `TW_GATEWAY_ALLOW_HOSTS='["127.0.0.1:8400", "example.com"]'`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tracewheel.core.settings import ServiceSettings
from tracewheel.gateway.browser.context import Timeouts
from tracewheel.gateway.policy import DEFAULT_ALLOW_HOSTS, UrlPolicy
from tracewheel.gateway.session import BrowserConfig


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TW_GATEWAY_", extra="forbid", frozen=True)

    grpc_port: int = Field(default=50052, ge=0, le=65535, description="gRPC port.")
    http_host: str = Field(default="127.0.0.1", description="Address the HTTP server (MCP at /mcp) binds to.")
    http_port: int = Field(default=8100, ge=0, le=65535, description="HTTP port of the MCP endpoint `/mcp`.")

    # Browser and sessions (mapped onto BrowserConfig by `browser_config`).
    chromium_path: str | None = Field(
        default=None, description="The chromium binary; unset looks up Debian's `chromium` on PATH."
    )
    allow_hosts: tuple[str, ...] = Field(
        default=DEFAULT_ALLOW_HOSTS,
        description="Host patterns the browser may reach even on loopback/private addresses (see policy.py); "
        "the task site by default.",
    )
    deny_hosts: tuple[str, ...] = Field(default=(), description="Host patterns denied even when public.")
    action_timeout_s: float = Field(default=5.0, gt=0, description="Seconds a tool waits for an element to act on.")
    navigation_timeout_s: float = Field(default=30.0, gt=0, description="Seconds a tool waits for a page to load.")
    settle_timeout_s: float = Field(
        default=5.0, ge=0, description="Seconds a tool waits for the requests an action started before snapshotting."
    )
    snapshot_style: Literal["full", "compact"] = Field(
        default="full",
        description="How page snapshots read: `full` as @playwright/mcp prints them, `compact` without URLs, "
        "wrappers and refs of non-interactive elements (about half the tokens; browser/compact.py).",
    )
    snapshot_mode: Literal["full", "incremental"] = Field(
        default="full",
        description="What an action reports of the page: `full` the whole snapshot (as @playwright/mcp), "
        "`incremental` only what changed when the tab stays at the URL the model last saw (browser/incremental.py).",
    )
    max_sessions: int = Field(
        default=8, ge=1, description="Browser sessions open at once (gRPC and MCP together); more are refused."
    )
    idle_timeout_s: float = Field(
        default=900.0, gt=0, description="A session (gRPC or MCP) unused this long is closed."
    )
    attachments_dir: Path | None = Field(
        default=None, description="Where screenshots and saved files go; unset: `<home>/gateway/attachments`."
    )
    max_result_chars: int = Field(
        default=20_000,
        ge=0,
        description="Longest tool result text the model reads (0: no limit); the default of "
        "sessions that do not set their own.",
    )

    # External MCP servers.
    mcp_servers_file: Path | None = Field(
        default=None,
        description='JSON file `{"mcpServers": {name: {"command", "args", "env"} | {"url"}}}` of external MCP '
        "servers whose tools the gateway serves beside its own (named `<name>__<tool>`); unset: none.",
    )
    external_call_timeout_s: float = Field(
        default=60.0, gt=0, description="Seconds an external MCP server may take to answer one request."
    )

    # The MCP endpoint /mcp (DNS-rebinding protection; the bearer token is `auth_token`).
    mcp_allowed_hosts: tuple[str, ...] = Field(
        default=(),
        description="Host header values /mcp accepts (`host:port`, `host:*`); unset: 127.0.0.1:PORT and "
        "localhost:PORT.",
    )
    mcp_allowed_origins: tuple[str, ...] = Field(
        default=(),
        description="Origin header values /mcp accepts (requests without Origin pass); unset: "
        "http://127.0.0.1:PORT and http://localhost:PORT.",
    )

    def resolved_attachments_dir(self) -> Path:
        """`attachments_dir`, or `<home>/gateway/attachments`."""
        return self.attachments_dir or self.home / "gateway" / "attachments"

    def browser_config(self) -> BrowserConfig:
        """The SessionManager's configuration."""
        return BrowserConfig(
            executable_path=self.chromium_path,
            max_sessions=self.max_sessions,
            idle_timeout_s=self.idle_timeout_s,
            timeouts=Timeouts(
                action=self.action_timeout_s, navigation=self.navigation_timeout_s, settle=self.settle_timeout_s
            ),
            max_result_chars=self.max_result_chars,
            attachments_dir=self.resolved_attachments_dir(),
            policy=UrlPolicy(allow_hosts=self.allow_hosts, deny_hosts=self.deny_hosts),
            snapshot_style=self.snapshot_style,
            snapshot_mode=self.snapshot_mode,
        )

    def mcp_hosts(self, port: int) -> tuple[list[str], list[str]]:
        """The Host and Origin values /mcp accepts when bound to `port`."""
        hosts = list(self.mcp_allowed_hosts) or [f"127.0.0.1:{port}", f"localhost:{port}"]
        origins = list(self.mcp_allowed_origins) or [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
        return hosts, origins
