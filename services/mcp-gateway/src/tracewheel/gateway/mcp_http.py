"""MCP streamable HTTP at `/mcp`: the gateway's aggregated tools for any MCP client.

Built on the SDK's low-level `Server` and `StreamableHTTPSessionManager` (stateful): each MCP
session gets its own browser session, opened on its first browser tool call and closed when
the MCP session ends (client DELETE, idle timeout, crash). External tools are passed through
unchanged (their images and structured content included). The endpoint checks Host and Origin
against an allow-list (DNS-rebinding protection; the SDK's TransportSecuritySettings) and,
when a token is configured, `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from typing import Any

from mcp import types as mcp_types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from tracewheel.gateway.browser.registry import TOOLS_BY_NAME
from tracewheel.gateway.router import Gateway
from tracewheel.gateway.session import SessionNotFound

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
_SESSION_HEADER = "mcp-session-id"


class _TrackedSessionManager(StreamableHTTPSessionManager):
    """Tells the endpoint when an MCP session ends, however it ends.

    `_discard_session` is the one place mcp 2.3.0 calls for every ending (DELETE, idle timeout,
    crash, refused opening); mcp is pinned, and the test of session close catches a change.
    """

    def __init__(self, *args: Any, on_session_end: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_session_end = on_session_end

    async def _discard_session(self, session_id: str, transport: Any) -> None:
        await super()._discard_session(session_id, transport)
        await self._on_session_end(session_id)


def _text_result(text: str, is_error: bool) -> mcp_types.CallToolResult:
    return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=text)], is_error=is_error)


class McpHttpEndpoint:
    """The ASGI app serving `/mcp`; `start()` before serving, `stop()` after.

    Args:
        gateway: sessions and tools.
        allowed_hosts: Host header values accepted (`host:port`, `host:*`).
        allowed_origins: Origin header values accepted (requests without Origin pass).
        auth_token: when set, requests must carry `Authorization: Bearer <token>`.
        idle_timeout_s: an MCP session without requests this long is ended (and its browser session closed).
    """

    def __init__(
        self,
        gateway: Gateway,
        *,
        allowed_hosts: list[str],
        allowed_origins: list[str],
        auth_token: str | None = None,
        idle_timeout_s: float = 900.0,
    ) -> None:
        self.gateway = gateway
        self._token = auth_token
        self._browser_sessions: dict[str, str] = {}  # MCP session id -> gateway session id
        self._open_lock = asyncio.Lock()
        self.server: Server[Any] = Server(
            "tracewheel-gateway", version="0.1.0", on_list_tools=self._list_tools, on_call_tool=self._call_tool
        )
        security = TransportSecuritySettings(allowed_hosts=allowed_hosts, allowed_origins=allowed_origins)
        self.sessions = _TrackedSessionManager(
            self.server,
            security_settings=security,
            session_idle_timeout=idle_timeout_s,
            on_session_end=self._end_session,
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Starts the session manager (in its own task: its task group must exit where it entered)."""
        started = asyncio.get_running_loop().create_future()

        async def hold() -> None:
            async with self.sessions.run():
                started.set_result(None)
                await self._stop.wait()

        self._task = asyncio.create_task(hold(), name="mcp-http-sessions")
        await started

    async def stop(self) -> None:
        """Ends every MCP session (closing their browser sessions)."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        for mcp_session_id in list(self._browser_sessions):
            await self._end_session(mcp_session_id)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != MCP_PATH:
            await self._reply(send, 404, {"error": f"not found; the MCP endpoint is {MCP_PATH}"})
            return
        if self._token is not None and not self._authorized(scope):
            await self._reply(
                send, 401, {"error": "missing or wrong bearer token"}, ((b"www-authenticate", b"Bearer"),)
            )
            return
        await self.sessions.handle_request(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        assert self._token is not None
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), self._token.encode())

    @staticmethod
    async def _reply(
        send: Send, status: int, body: dict[str, str], headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        data = json.dumps(body).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *headers]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": data})

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListToolsResult:
        builtin = [
            mcp_types.Tool(
                name=t.name,
                title=t.title,
                description=t.description,
                input_schema=dict(t.input_schema),
                annotations=mcp_types.ToolAnnotations.model_validate(t.annotations()),
            )
            for t in TOOLS_BY_NAME.values()
        ]
        external = [t.tool.model_copy(update={"name": t.name}) for t in self.gateway.aggregator.tools()]
        return mcp_types.ListToolsResult(tools=[*builtin, *external])

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: mcp_types.CallToolRequestParams
    ) -> mcp_types.CallToolResult:
        arguments = dict(params.arguments or {})
        external = self.gateway.aggregator.get(params.name)
        if external is not None:
            return await self.gateway.aggregator.call_tool(external, arguments)
        if params.name not in TOOLS_BY_NAME:
            return _text_result(f"### Error\nUnknown tool {params.name!r}.", True)
        session_id = await self._browser_session_for(_mcp_session_id(ctx))
        timed = await self.gateway.call(session_id, params.name, arguments)
        return _text_result(timed.result.text, timed.result.is_error)

    async def _browser_session_for(self, mcp_session_id: str) -> str:
        async with self._open_lock:
            session_id = self._browser_sessions.get(mcp_session_id)
            if session_id is not None:
                try:
                    self.gateway.get(session_id)
                    return session_id
                except SessionNotFound:  # reaped (idle or crashed): the MCP session goes on with a fresh one
                    logger.info(
                        "MCP session %s: browser session %s is gone; opening another", mcp_session_id, session_id
                    )
            session = await self.gateway.open(TOOLS_BY_NAME)
            self._browser_sessions[mcp_session_id] = session.id
            return session.id

    async def _end_session(self, mcp_session_id: str) -> None:
        session_id = self._browser_sessions.pop(mcp_session_id, None)
        if session_id is None:
            return
        with contextlib.suppress(SessionNotFound):
            await self.gateway.close(session_id)
        logger.info("MCP session %s ended; closed browser session %s", mcp_session_id, session_id)

    def browser_session_of(self, mcp_session_id: str) -> str | None:
        """The browser session serving an MCP session, if it has one (for tests and debugging)."""
        return self._browser_sessions.get(mcp_session_id)


def _mcp_session_id(ctx: ServerRequestContext[Any]) -> str:
    request = ctx.request
    headers = getattr(request, "headers", None)
    session_id = headers.get(_SESSION_HEADER) if headers is not None else None
    # Without a transport session (a stateless request) every call gets the connection's own key.
    return session_id or f"connection-{id(ctx.session)}"
