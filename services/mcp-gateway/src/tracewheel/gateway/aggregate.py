"""External MCP servers behind the gateway (the "aggregator").

The servers come from a file in the shape MCP clients use:
`{"mcpServers": {name: {"command": ..., "args": [...], "env": {...}} | {"url": ...}}}`.
A `command` server is started as a child process and spoken to over stdio; a `url` server is
reached over streamable HTTP. Each tool of server `name` is offered as `name__tool`: always
prefixed, so names never collide with the built-in browser tools or with another server's,
and a trace says which server answered. Server names are `[A-Za-z0-9-]`, `_` between them
(never `__`, so the prefix splits unambiguously).

A stdio server that died is restarted on the next call: the call that finds the connection
closed restarts the server and is retried once. Each server's connection lives in its own
task, because the SDK's transports are anyio task groups that must be exited by the task that
entered them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio
from mcp import types as mcp_types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CONNECTION_CLOSED

from tracewheel.core.errors import ConfigError, Unavailable

logger = logging.getLogger(__name__)

SEPARATOR = "__"
_SERVER_NAME = re.compile(r"^[A-Za-z0-9-]+(_[A-Za-z0-9-]+)*$")
_BROKEN = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError)


@dataclass(frozen=True)
class ServerSpec:
    """One external MCP server: a command to run (stdio) or a URL (streamable HTTP)."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None


def parse_server_specs(data: Any) -> list[ServerSpec]:
    """The servers of an `{"mcpServers": {...}}` document.

    Raises:
        ConfigError: the document does not have that shape; the message says where.
    """
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError('MCP servers file: expected {"mcpServers": {name: {...}}}')
    specs = []
    for name, entry in servers.items():
        where = f"MCP servers file: mcpServers.{name}"
        if not _SERVER_NAME.match(name):
            raise ConfigError(f"{where}: a server name is letters, digits, '-' and single '_'")
        if not isinstance(entry, dict) or ("command" in entry) == ("url" in entry):
            raise ConfigError(f"{where}: give either 'command' (with optional 'args', 'env') or 'url'")
        args, env = entry.get("args", []), entry.get("env", {})
        if not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
            raise ConfigError(f"{where}.args: expected a list of strings")
        if not (isinstance(env, dict) and all(isinstance(v, str) for v in env.values())):
            raise ConfigError(f"{where}.env: expected an object of strings")
        specs.append(ServerSpec(name, entry.get("command"), tuple(args), dict(env), entry.get("url")))
    return specs


def load_server_specs(path: Path) -> list[ServerSpec]:
    """The servers listed in the JSON file at `path`.

    Raises:
        ConfigError: the file is missing, not JSON, or not in the `mcpServers` shape.
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read MCP servers file {path}: {exc}") from exc
    return parse_server_specs(data)


@dataclass(frozen=True)
class ExternalTool:
    """A tool of an external server as the gateway offers it (`name` is `<server>__<tool>`)."""

    name: str
    server: str
    tool: mcp_types.Tool

    @property
    def description(self) -> str | None:
        return self.tool.description

    @property
    def input_schema(self) -> Mapping[str, Any]:
        return self.tool.input_schema


class ExternalServer:
    """A connection to one external MCP server, restarted when it breaks.

    Args:
        spec: what to run or connect to.
        timeout_s: how long one request may take.
        errlog: where a stdio server's stderr goes.
    """

    def __init__(self, spec: ServerSpec, *, timeout_s: float = 60.0, errlog: TextIO | None = None) -> None:
        self.spec = spec
        self.timeout_s = timeout_s
        self.errlog = errlog or sys.stderr
        self.tools: list[ExternalTool] = []
        self.restarts = 0
        self._session: ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Starts (or connects to) the server and lists its tools.

        Raises:
            Unavailable: it did not start or did not answer.
        """
        ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._hold_connection(ready), name=f"mcp-server-{self.spec.name}")
        try:
            self._session = await ready
        except Exception as exc:
            await self.close()
            raise Unavailable(f"MCP server {self.spec.name!r} did not start: {exc}") from exc
        await self.refresh()

    async def _hold_connection(self, ready: asyncio.Future[ClientSession]) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self.spec.url is not None:
                    read, write = await stack.enter_async_context(streamable_http_client(self.spec.url))
                else:
                    assert self.spec.command is not None
                    params = StdioServerParameters(
                        command=self.spec.command, args=list(self.spec.args), env=dict(self.spec.env) or None
                    )
                    read, write = await stack.enter_async_context(stdio_client(params, errlog=self.errlog))
                session = await stack.enter_async_context(
                    ClientSession(read, write, read_timeout_seconds=self.timeout_s)
                )
                await session.initialize()
                ready.set_result(session)
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else Unavailable("cancelled"))
            if not isinstance(exc, Exception):
                raise
            logger.warning("MCP server %s: connection ended: %s", self.spec.name, exc)

    async def refresh(self) -> list[ExternalTool]:
        """Lists the server's tools again (following pagination)."""
        session = self._require_session()
        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        while True:
            params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        self.tools = [ExternalTool(f"{self.spec.name}{SEPARATOR}{t.name}", self.spec.name, t) for t in tools]
        return self.tools

    def _require_session(self) -> ClientSession:
        if self._session is None:
            raise Unavailable(f"MCP server {self.spec.name!r} is not connected")
        return self._session

    async def call_tool(self, name: str, arguments: Mapping[str, Any] | None) -> mcp_types.CallToolResult:
        """Calls the server's tool `name`; a broken connection is restarted and the call retried once.

        Raises:
            MCPError: the server answered with a protocol error (unknown tool, bad params, timeout).
            Unavailable: the server could not be restarted.
        """
        session = self._session
        try:
            return await self._call(session, name, arguments)
        except MCPError as exc:
            if exc.code != CONNECTION_CLOSED:
                raise
            reason = exc.message
        except _BROKEN as exc:
            reason = f"{type(exc).__name__}: {exc}"
        await self._restart(session, reason)
        return await self._call(self._session, name, arguments)

    async def _call(
        self, session: ClientSession | None, name: str, arguments: Mapping[str, Any] | None
    ) -> mcp_types.CallToolResult:
        if session is None:
            raise MCPError(CONNECTION_CLOSED, "not connected")
        result = await session.call_tool(name, dict(arguments or {}))
        assert isinstance(result, mcp_types.CallToolResult)
        return result

    async def _restart(self, broken: ClientSession | None, reason: str) -> None:
        async with self._lock:
            if self._session is not broken and self._session is not None:
                return  # another call restarted it already
            logger.warning("MCP server %s: connection broken (%s); restarting", self.spec.name, reason)
            await self.close()
            self.restarts += 1
            await self.start()

    async def close(self) -> None:
        """Ends the connection (a stdio server is stopped: stdin closed, then terminated)."""
        self._session = None
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            self._task = None


class Aggregator:
    """The external MCP servers of the gateway and their tools, by gateway name.

    Args:
        specs: the servers.
        timeout_s: how long one request to a server may take.
    """

    def __init__(self, specs: list[ServerSpec], *, timeout_s: float = 60.0, errlog: TextIO | None = None) -> None:
        self.servers = {spec.name: ExternalServer(spec, timeout_s=timeout_s, errlog=errlog) for spec in specs}

    async def start(self) -> None:
        """Starts every server; fails if one does not start (a gateway missing tools would mislead its agents).

        Raises:
            Unavailable: naming the server that did not start.
        """
        try:
            await asyncio.gather(*(server.start() for server in self.servers.values()))
        except BaseException:
            await self.close()
            raise
        logger.info("aggregated %d tools from %d MCP servers", len(self.tools()), len(self.servers))

    async def refresh(self) -> list[ExternalTool]:
        """Lists every server's tools again."""
        await asyncio.gather(*(server.refresh() for server in self.servers.values()))
        return self.tools()

    def tools(self) -> list[ExternalTool]:
        """Every external tool, by server then the server's order."""
        return [tool for server in self.servers.values() for tool in server.tools]

    def get(self, name: str) -> ExternalTool | None:
        """The external tool with gateway name `name`, if any."""
        server_name, sep, _ = name.partition(SEPARATOR)
        server = self.servers.get(server_name) if sep else None
        return next((t for t in server.tools if t.name == name), None) if server else None

    async def call_tool(self, tool: ExternalTool, arguments: Mapping[str, Any] | None) -> mcp_types.CallToolResult:
        """Calls `tool` on its server; protocol errors come back as `is_error` results the model can read.

        Raises:
            Unavailable: the server is down and could not be restarted.
        """
        try:
            return await self.servers[tool.server].call_tool(tool.tool.name, arguments)
        except MCPError as exc:
            text = f"### Error\n{tool.name} failed: {exc.message}"
            return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=text)], is_error=True)

    async def close(self) -> None:
        """Stops every server."""
        await asyncio.gather(*(server.close() for server in self.servers.values()))
