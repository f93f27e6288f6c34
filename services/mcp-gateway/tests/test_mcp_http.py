"""MCP streamable HTTP at /mcp, driven by the official MCP client."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
import pytest_asyncio
from mcp import types as mcp_types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tracewheel.core.http_server import HttpServer
from tracewheel.gateway.mcp_http import McpHttpEndpoint
from tracewheel.gateway.router import Gateway
from tracewheel.gateway.session import SessionManager

pytestmark = pytest.mark.asyncio(loop_scope="session")
TOKEN = "test-token"


@dataclass
class Endpoint:
    url: str
    port: int
    endpoint: McpHttpEndpoint


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture(loop_scope="session", params=[None, TOKEN], ids=["open", "token"])
async def mcp_endpoint(manager: SessionManager, request: pytest.FixtureRequest) -> AsyncIterator[Endpoint]:
    port = _free_port()
    endpoint = McpHttpEndpoint(
        Gateway(manager),
        allowed_hosts=[f"127.0.0.1:{port}", f"localhost:{port}"],
        allowed_origins=[f"http://127.0.0.1:{port}"],
        auth_token=request.param,
    )
    await endpoint.start()
    http = HttpServer(endpoint, "127.0.0.1", port)
    await http.start()
    yield Endpoint(f"http://127.0.0.1:{port}/mcp", port, endpoint)
    await http.stop()
    await endpoint.stop()


def _client(endpoint: Endpoint, token: str | None) -> httpx2.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0))


def _text(result: mcp_types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, mcp_types.TextContent))


async def test_list_navigate_snapshot_then_session_closes(
    mcp_endpoint: Endpoint, manager: SessionManager, site: Any
) -> None:
    token = TOKEN if mcp_endpoint.endpoint._token else None
    before = len(manager.sessions())
    async with (
        _client(mcp_endpoint, token) as http,
        streamable_http_client(mcp_endpoint.url, http_client=http) as (read, write),
        ClientSession(read, write) as client,
    ):
        await client.initialize()
        tools = (await client.list_tools()).tools
        navigated = await client.call_tool("browser_navigate", {"url": site.url + "/form"})
        snapshot = await client.call_tool("browser_snapshot", {})
        assert len(manager.sessions()) == before + 1

    names = {tool.name for tool in tools}
    assert {"browser_navigate", "browser_snapshot", "browser_click"} <= names
    navigate = next(t for t in tools if t.name == "browser_navigate")
    assert navigate.input_schema["required"] == ["url"]
    assert navigate.annotations is not None and navigate.annotations.destructive_hint
    assert not navigated.is_error, _text(navigated)
    assert "Page Title: Form" in _text(navigated)
    assert 'textbox "Name"' in _text(snapshot)
    # The client's DELETE ended the MCP session, and with it the browser session.
    assert len(manager.sessions()) == before


async def test_wrong_host_is_refused(mcp_endpoint: Endpoint) -> None:
    token = TOKEN if mcp_endpoint.endpoint._token else None
    async with _client(mcp_endpoint, token) as http:
        reply = await http.post(
            mcp_endpoint.url,
            headers={"Host": f"attacker.example:{mcp_endpoint.port}", "Content-Type": "application/json"},
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        )
        bad_origin = await http.post(
            mcp_endpoint.url,
            headers={"Origin": "http://attacker.example", "Content-Type": "application/json"},
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        )
    assert reply.status_code == 421
    assert bad_origin.status_code == 403


async def test_missing_or_wrong_token_is_refused_when_configured(mcp_endpoint: Endpoint) -> None:
    configured = mcp_endpoint.endpoint._token is not None
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream"}
    for token in (None, "wrong"):
        async with _client(mcp_endpoint, token) as http:
            reply = await http.post(mcp_endpoint.url, json=ping, headers=headers)
        if configured:
            assert reply.status_code == 401
            assert reply.headers["www-authenticate"] == "Bearer"
        else:
            assert reply.status_code != 401


async def test_other_paths_are_not_found(mcp_endpoint: Endpoint) -> None:
    async with _client(mcp_endpoint, None) as http:
        reply = await http.get(mcp_endpoint.url.replace("/mcp", "/other"))
    assert reply.status_code == 404
