"""How the gateway runs its browser and sessions, each option declared once.

`BrowserOptions` holds what a deployment sets: the gateway's settings inherit it
(`config.GatewaySettings`), so each option is also `TW_GATEWAY_<NAME>`. `BrowserConfig` is what
the `SessionManager` takes: those options plus what only code and tests set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tracewheel.gateway.browser.context import Timeouts
from tracewheel.gateway.policy import DEFAULT_ALLOW_HOSTS, UrlPolicy

DEFAULT_LAUNCH_ARGS = (
    "--no-sandbox",  # the gateway runs as root in its container, where chromium's sandbox cannot start
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-gpu",
)


class BrowserOptions(BaseModel):
    """The browser and session options a deployment sets (lists are JSON in the environment)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
    max_result_chars: int = Field(
        default=20_000,
        ge=0,
        description="Longest tool result text the model reads (0: no limit); the default of "
        "sessions that do not set their own.",
    )

    @property
    def timeouts(self) -> Timeouts:
        """How long tools wait for elements, loads and requests."""
        return Timeouts(
            action=self.action_timeout_s, navigation=self.navigation_timeout_s, settle=self.settle_timeout_s
        )

    @property
    def policy(self) -> UrlPolicy:
        """The URL policy every session enforces."""
        return UrlPolicy(allow_hosts=self.allow_hosts, deny_hosts=self.deny_hosts)


class BrowserConfig(BrowserOptions):
    """What the SessionManager takes: the options plus what only code and tests set."""

    headless: bool = Field(default=True, description="Run without a display.")
    launch_args: tuple[str, ...] = Field(default=DEFAULT_LAUNCH_ARGS, description="chromium command-line switches.")
    reap_interval_s: float = Field(
        default=30.0, ge=0, description="How often the reaper looks for idle sessions; 0 disables it (call reap_idle)."
    )
    attachments_dir: Path = Field(
        default=Path(".tracewheel/gateway/attachments"),
        description="Where screenshots and saved snapshots go, one folder per session.",
    )
    viewport: tuple[int, int] = Field(default=(1280, 720), description="The page size in CSS pixels.")
