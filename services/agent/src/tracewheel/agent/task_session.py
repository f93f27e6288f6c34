"""A suite task's tool session: its own tool subset, MCP servers and allowed hosts, and its final page.

A task may narrow what the run uses (`Task.tools`, `mcp_servers`, `allowed_hosts`); a task whose
checker reads the end state gets a `browser_snapshot` after the run, before the session closes.
`browser_snapshot` is then in the session even when the model is not offered it.

`allowed_hosts` is checked on the URLs the model navigates to (`browser_navigate`, a tab opened
with a URL): a refused URL is an error result the model reads. Every request the browser makes
is still under the gateway's own URL policy (TW_GATEWAY_ALLOW_HOSTS / DENY_HOSTS).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.suites.checks import PageState, needs_page
from tracewheel.agent.tasks import Task
from tracewheel.agent.tools import SessionLost, ToolOutput, ToolSession, ToolSessionFactory

logger = logging.getLogger(__name__)

SNAPSHOT_TOOL = "browser_snapshot"
NAVIGATING_TOOLS = ("browser_navigate", "browser_tabs")
MCP_SEPARATOR = "__"
"""The gateway offers external server `name`'s tool `t` as `name__t`."""


def host_allowed(url: str, allowed: Sequence[str]) -> bool:
    """Whether `url`'s host is allowed: an entry `host` allows any port, `host:port` that port,
    `*.example.com` its subdomains. Non-HTTP URLs (about:blank) pass."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return parts.scheme in ("about", "")
    host = (parts.hostname or "").lower()
    with_port = f"{host}:{parts.port}" if parts.port else host
    for entry in (a.lower() for a in allowed):
        if entry in (host, with_port) or (entry.startswith("*.") and host.endswith(entry[1:])):
            return True
    return False


class HostLimitedSession:
    """A ToolSession that refuses navigation outside a task's allowed hosts."""

    def __init__(self, inner: ToolSession, allowed_hosts: Sequence[str]) -> None:
        self.inner = inner
        self.allowed_hosts = tuple(allowed_hosts)

    async def list_tools(self) -> list[dict[str, Any]]:
        return await self.inner.list_tools()

    async def call_tool(self, name: str, arguments_json: str) -> ToolOutput:
        url = None
        if name in NAVIGATING_TOOLS:
            with contextlib.suppress(json.JSONDecodeError, AttributeError):  # the session answers those itself
                url = json.loads(arguments_json or "{}").get("url")
        if isinstance(url, str) and not host_allowed(url, self.allowed_hosts):
            hosts = ", ".join(self.allowed_hosts)
            return ToolOutput(f"### Error\n{url} is outside this task's allowed hosts ({hosts}).", is_error=True)
        return await self.inner.call_tool(name, arguments_json)

    async def reopen(self) -> None:
        await self.inner.reopen()

    async def close(self) -> None:
        await self.inner.close()


def _session_tools(task: Task, config: LoopOptions) -> list[str] | None:
    """The tools to open the session with (None: all, so that MCP servers' tools can be picked)."""
    if task.mcp_servers:
        return None
    names = list(task.tools or config.tools)
    if names and needs_page(task.check) and SNAPSHOT_TOOL not in names:
        names.append(SNAPSHOT_TOOL)
    return names or None


async def open_task_session(
    factory: ToolSessionFactory, task: Task | None, config: LoopOptions
) -> tuple[ToolSession, LoopOptions]:
    """A session for `task` (None: a free-form prompt) and the loop options the run uses in it.

    Raises:
        InvalidArgument, ResourceExhausted, Unavailable: see `ToolSessionFactory.open`.
    """
    if task is None:
        return await factory.open(config.tools, config.result_char_limit), config
    session: ToolSession = await factory.open(_session_tools(task, config), config.result_char_limit)
    tools = tuple(task.tools or config.tools)
    if task.mcp_servers:
        names = [t["function"]["name"] for t in await session.list_tools()]
        tools += tuple(n for n in names if n.partition(MCP_SEPARATOR)[0] in task.mcp_servers and MCP_SEPARATOR in n)
    if tools != config.tools:
        arguments = {name: args for name, args in config.tool_arguments.items() if name in tools}
        config = config.model_copy(update={"tools": tools, "tool_arguments": arguments})
    if task.allowed_hosts:
        session = HostLimitedSession(session, task.allowed_hosts)
    return session, config


async def final_page(task: Task, session: ToolSession) -> PageState | None:
    """The page the run ended on, when the task's checker reads it (a snapshot of the current tab)."""
    if not needs_page(task.check):
        return None
    try:
        output = await session.call_tool(SNAPSHOT_TOOL, "{}")
    except SessionLost as exc:
        logger.info("task %s: no final page, the session is gone: %s", task.task_id, exc)
        return None
    if output.is_error:
        logger.info("task %s: no final page: %s", task.task_id, output.text[:200])
        return None
    return PageState.from_snapshot(output.text)
