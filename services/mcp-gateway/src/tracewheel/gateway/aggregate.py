"""External MCP servers behind the gateway (the "aggregator").

The servers come from the `mcpServers` file (server_specs.py). A `command` server is started
as a child process and spoken to over stdio; a `url` server is reached over streamable HTTP
(`type` "http", the default) or the older HTTP+SSE transport (`type` "sse"), with the
`headers` given (e.g. a bearer token). Each tool of server `name` is offered as `name__tool`: always
prefixed, so names never collide with the built-in browser tools or with another server's,
and a trace says which server answered. Server names are `[A-Za-z0-9-]`, `_` between them
(never `__`, so the prefix splits unambiguously).

A server that died (a stdio process gone, an HTTP server that dropped the session) is
reconnected on the next call: the call that finds the connection closed reconnects and is
retried once; a server that still cannot be reached answers the call with an `is_error`
result naming it and the reason, and the other servers' tools keep working. Each server's
connection lives in its own task, because the SDK's transports are anyio task groups that
must be exited by the task that entered them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import anyio
import httpx2
from mcp import types as mcp_types
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CONNECTION_CLOSED

from tracewheel.core.errors import Unavailable
from tracewheel.gateway.server_specs import SEPARATOR, ServerSpec, load_server_specs, parse_server_specs

logger = logging.getLogger(__name__)

_BROKEN = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError)
# the SDK's own defaults: requests 30 s, a response stream may stay open 5 minutes between events
HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
__all__ = [
    "SEPARATOR",
    "Aggregator",
    "ExternalServer",
    "ExternalTool",
    "ServerSpec",
    "load_server_specs",
    "parse_server_specs",
]


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


def http_error(response: httpx2.Response) -> str:
    """An HTTP error status in words; 401 and 403 say where to look."""
    hint = " (check the headers it is sent: its token, a Host it accepts)" if response.status_code in (401, 403) else ""
    return f"HTTP {response.status_code} {response.reason_phrase} from {response.request.url}{hint}"


def failure(exc: BaseException) -> str:
    """What went wrong with a server, in one line: the first error inside the SDK's task-group wrappers."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, httpx2.HTTPStatusError):
        return http_error(exc.response)
    if isinstance(exc, httpx2.ConnectError):
        try:
            return f"cannot connect to {exc.request.url}: {exc}"
        except RuntimeError:  # no request attached
            return f"cannot connect: {exc}"
    if isinstance(exc, MCPError):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


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
        self.last_http_error: str | None = None
        """The last HTTP error status the server answered (the SDK reports it without the status)."""
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
            await self.refresh()
        except Exception as exc:
            await self.close()
            raise Unavailable(
                f"MCP server {self.spec.name!r} {self._where()} failed to connect: {self.explain(exc)}"
            ) from exc

    def explain(self, exc: BaseException) -> str:
        """What went wrong, with the HTTP status the server answered when the SDK's error leaves it out."""
        reason = failure(exc)
        if self.last_http_error and self.last_http_error not in reason:
            return f"{self.last_http_error}: {reason}"
        return reason

    async def _record_status(self, response: httpx2.Response) -> None:
        self.last_http_error = http_error(response) if response.status_code >= 400 else None

    def _where(self) -> str:
        return f"({self.spec.kind} {self.spec.url})" if self.spec.url else f"({self.spec.command})"

    async def _transport(self, stack: contextlib.AsyncExitStack) -> tuple[Any, Any]:
        spec = self.spec
        if spec.kind == "sse":
            assert spec.url is not None
            return await stack.enter_async_context(sse_client(spec.url, headers=dict(spec.headers) or None))
        if spec.kind == "http":
            assert spec.url is not None
            hooks = {"response": [self._record_status]}
            client = httpx2.AsyncClient(headers=dict(spec.headers), timeout=HTTP_TIMEOUT, event_hooks=hooks)
            await stack.enter_async_context(client)
            return await stack.enter_async_context(streamable_http_client(spec.url, http_client=client))
        assert spec.command is not None
        params = StdioServerParameters(command=spec.command, args=list(spec.args), env=dict(spec.env) or None)
        return await stack.enter_async_context(stdio_client(params, errlog=self.errlog))

    async def _hold_connection(self, ready: asyncio.Future[ClientSession]) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await self._transport(stack)
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
            logger.warning("MCP server %s: connection ended: %s", self.spec.name, failure(exc))

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
        """Calls `tool` on its server. Whatever goes wrong there (a protocol error, a server that is
        down and does not come back, a broken connection) is an `is_error` result the model can
        read, naming the server and the reason; the other servers are not affected."""
        server = self.servers[tool.server]
        try:
            return await server.call_tool(tool.tool.name, arguments)
        except Unavailable as exc:
            reason = str(exc)
        except (MCPError, TimeoutError, httpx2.HTTPError, *_BROKEN) as exc:
            reason = server.explain(exc)
        logger.warning("external tool %s failed: %s", tool.name, reason)
        text = f"### Error\n{tool.name} failed: {reason}"
        return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=text)], is_error=True)

    async def close(self) -> None:
        """Stops every server."""
        await asyncio.gather(*(server.close() for server in self.servers.values()))
