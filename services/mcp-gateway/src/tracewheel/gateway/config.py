"""Settings of the gateway service (environment variables TW_GATEWAY_*).

The browser and session options are declared once, in `browser_options.BrowserOptions`; the
settings inherit them. Lists are JSON in the environment:
`TW_GATEWAY_ALLOW_HOSTS='["127.0.0.1:8400", "example.com"]'`.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tracewheel.core.settings import ServiceSettings
from tracewheel.gateway.browser_options import BrowserConfig, BrowserOptions


class GatewaySettings(ServiceSettings, BrowserOptions):
    model_config = SettingsConfigDict(env_prefix="TW_GATEWAY_", extra="forbid", frozen=True)

    uses_nats: ClassVar[bool] = False  # the gateway publishes and consumes no event

    grpc_port: int = Field(default=50052, ge=0, le=65535, description="gRPC port.")
    http_host: str = Field(default="127.0.0.1", description="Address the HTTP server (MCP at /mcp) binds to.")
    http_port: int = Field(default=8100, ge=0, le=65535, description="HTTP port of the MCP endpoint `/mcp`.")

    # The browser and session options are BrowserOptions fields (browser_options.py).
    attachments_dir: Path | None = Field(
        default=None, description="Where screenshots and saved files go; unset: `<home>/gateway/attachments`."
    )

    # External MCP servers.
    mcp_servers_file: Path | None = Field(
        default=None,
        description='JSON file `{"mcpServers": {name: {"command", "args", "env"} | {"url", "type": "http"|"sse", '
        '"headers"}}}` of external MCP servers whose tools the gateway serves beside its own (named '
        "`<name>__<tool>`); header and env values may read the gateway's environment as `${NAME}`; unset: none.",
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
        """The SessionManager's configuration: the browser options, attachments under `home`."""
        options = {name: getattr(self, name) for name in BrowserOptions.model_fields}
        return BrowserConfig(**options, attachments_dir=self.resolved_attachments_dir())

    def mcp_hosts(self, port: int) -> tuple[list[str], list[str]]:
        """The Host and Origin values /mcp accepts when bound to `port`."""
        hosts = list(self.mcp_allowed_hosts) or [f"127.0.0.1:{port}", f"localhost:{port}"]
        origins = list(self.mcp_allowed_origins) or [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
        return hosts, origins
