"""External MCP servers over HTTP: a team's server written with the official SDK (streamable HTTP
with a bearer token from the environment, and SSE), @playwright/mcp on its own HTTP port, and
servers that are down, refuse the token or answer garbage."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio

from tracewheel.core.errors import ConfigError, Unavailable
from tracewheel.core.natsserver import free_port, wait_for_port
from tracewheel.gateway.aggregate import Aggregator, ServerSpec, load_server_specs, parse_server_specs
from tracewheel.gateway.router import Gateway
from tracewheel.gateway.session import SessionManager

from .conftest import _serve

SDK_SERVER = Path(__file__).with_name("sdk_mcp_server.py")
StartServer = Callable[..., tuple[str, subprocess.Popen[bytes]]]


def test_http_and_sse_servers_with_headers_from_the_environment() -> None:
    document = {
        "mcpServers": {
            "team": {"url": "https://tools.example/mcp", "headers": {"Authorization": "Bearer ${TEAM_TOKEN}"}},
            "legacy": {"url": "http://127.0.0.1:9/sse", "type": "sse"},
            "local": {"command": "tool", "type": "stdio", "env": {"KEY": "${KEY}-suffix"}},
        }
    }
    team, legacy, local = parse_server_specs(document, environ={"TEAM_TOKEN": "s3cret", "KEY": "k"})
    assert (team.kind, team.headers) == ("http", {"Authorization": "Bearer s3cret"})
    assert "s3cret" not in repr(team)  # headers hold secrets
    assert (legacy.kind, local.kind, local.env) == ("sse", "stdio", {"KEY": "k-suffix"})


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"url": "http://h/mcp", "headers": {"A": "${MISSING}"}},
            r"mcpServers\.s\.headers\.A: environment variable MISSING",
        ),
        ({"url": "http://h/mcp", "headers": {"A": 1}}, r"mcpServers\.s\.headers: expected an object of strings"),
        ({"command": "x", "headers": {"A": "b"}}, "only a 'url' server sends headers"),
        ({"url": "http://h/mcp", "type": "stdio"}, r"mcpServers\.s\.type: 'stdio' does not fit"),
        ({"url": "http://h/mcp", "type": "websocket"}, r"'websocket' does not fit; use 'http'"),
        ({"url": "ftp://h/mcp"}, r"mcpServers\.s\.url: expected an http:// or https:// URL"),
    ],
)
def test_bad_http_entries_name_the_field(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_server_specs({"mcpServers": {"s": entry}}, environ={})


@pytest.fixture
def start_sdk_server() -> Iterator[StartServer]:
    """Starts `sdk_mcp_server.py` (transport, optional token); returns its URL and process."""
    started: list[subprocess.Popen[bytes]] = []

    def start(transport: str, token: str | None = None) -> tuple[str, subprocess.Popen[bytes]]:
        port = free_port()
        command = [sys.executable, str(SDK_SERVER), str(port), transport, *([token] if token else [])]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(process)
        wait_for_port("127.0.0.1", port, 60, process)
        return f"http://127.0.0.1:{port}/{'mcp' if transport == 'http' else 'sse'}", process

    yield start
    for process in started:
        process.terminate()
        process.wait(30)


@pytest_asyncio.fixture(loop_scope="session")
async def gateway_over(manager: SessionManager) -> AsyncIterator[Callable[[list[ServerSpec]], Any]]:
    """Connects an Aggregator to the servers given and returns a Gateway over it (closed after the test)."""
    opened: list[Gateway] = []

    async def connect(specs: list[ServerSpec]) -> Gateway:
        aggregator = Aggregator(specs, timeout_s=30)
        await aggregator.start()
        opened.append(Gateway(manager, aggregator))
        return opened[-1]

    yield connect
    for gateway in opened:
        await gateway.close_all()
        await gateway.aggregator.close()


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_a_teams_sdk_servers_join_and_one_going_down_leaves_the_other_working(
    start_sdk_server: StartServer, gateway_over: Callable[[list[ServerSpec]], Any], tmp_path: Path
) -> None:
    team_url, team_process = start_sdk_server("http", "s3cret")
    legacy_url, _ = start_sdk_server("sse")
    servers = {
        "team": {"url": team_url, "headers": {"Authorization": "Bearer ${TEAM_TOKEN}"}},
        "legacy": {"url": legacy_url, "type": "sse"},
    }
    (tmp_path / "servers.json").write_text(json.dumps({"mcpServers": servers}))
    gateway = await gateway_over(load_server_specs(tmp_path / "servers.json", environ={"TEAM_TOKEN": "s3cret"}))
    names = [spec.name for spec in gateway.tool_specs()]
    assert {"team__add", "team__shout", "team__fail", "legacy__add", "legacy__shout", "legacy__fail"} <= set(names)
    session = await gateway.open(["team__add", "team__fail", "legacy__shout"])
    added = await gateway.call(session.id, "team__add", {"a": 2, "b": 3})
    shouted = await gateway.call(session.id, "legacy__shout", {"text": "hi"})
    failed = await gateway.call(session.id, "team__fail", {"reason": "no"})
    assert (added.result.text, added.result.is_error) == ("5", False)
    assert (shouted.result.text, shouted.result.is_error) == ("HI", False)
    assert failed.result.is_error

    team_process.terminate()
    team_process.wait(30)
    down = await gateway.call(session.id, "team__add", {"a": 1, "b": 1})
    still = await gateway.call(session.id, "legacy__shout", {"text": "still here"})
    assert down.result.is_error and down.result.text.startswith("### Error\nteam__add failed: MCP server 'team'")
    assert "cannot connect to" in down.result.text
    assert (still.result.text, still.result.is_error) == ("STILL HERE", False)


class _Garbage(BaseHTTPRequestHandler):
    """Answers every request 200 with a body that is not MCP."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<html>not an MCP server</html>"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_servers_that_refuse_are_down_or_answer_garbage_fail_clearly_at_connect(
    start_sdk_server: StartServer,
) -> None:
    token_url, _ = start_sdk_server("http", "s3cret")
    garbage, thread = _serve(_Garbage)
    garbage_url = f"http://127.0.0.1:{garbage.server_address[1]}"
    cases = [
        (ServerSpec("team", url=token_url, headers={"Authorization": "Bearer wrong"}), "HTTP 401 Unauthorized"),
        (ServerSpec("gone", url=f"http://127.0.0.1:{free_port()}/mcp"), "cannot connect to http://127.0.0.1"),
        (ServerSpec("gone", url=f"http://127.0.0.1:{free_port()}/sse", transport="sse"), "cannot connect to"),
        (ServerSpec("junk", url=f"{garbage_url}/mcp"), "Failed to parse JSON response"),
        (ServerSpec("junk", url=f"{garbage_url}/sse", transport="sse"), "Expected response with content type"),
    ]
    try:
        for spec, reason in cases:
            aggregator = Aggregator([spec], timeout_s=10)
            with pytest.raises(
                Unavailable, match=f"MCP server '{spec.name}' \\({spec.kind} .*failed to connect: .*{reason}"
            ):
                await aggregator.start()
    finally:
        garbage.shutdown()
        garbage.server_close()
        thread.join()


@pytest.fixture
def playwright_mcp_http(playwright_mcp: ServerSpec, tmp_path: Path) -> Iterator[str]:
    """@playwright/mcp (pinned) serving on its own HTTP port; its base URL."""
    assert playwright_mcp.command is not None
    port = free_port()
    command = [playwright_mcp.command, *playwright_mcp.args, "--port", str(port), "--host", "127.0.0.1"]
    env = {**psutil.Process().environ(), **playwright_mcp.env}
    with (tmp_path / "playwright-mcp.log").open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", port, 60, process)
        yield f"http://localhost:{port}"  # it answers 403 to any Host but localhost:PORT (no --allowed-hosts)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # node and its chromium: their own process group
        process.wait(30)


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_playwright_mcp_on_its_own_port_over_http_and_sse(
    playwright_mcp_http: str, gateway_over: Callable[[list[ServerSpec]], Any], site: Any
) -> None:
    gateway = await gateway_over(
        [
            ServerSpec("pw", url=f"{playwright_mcp_http}/mcp"),
            ServerSpec("pwsse", url=f"{playwright_mcp_http}/sse", transport="sse"),
        ]
    )
    names = [spec.name for spec in gateway.tool_specs()]
    assert len([n for n in names if n.startswith("pw__")]) == 21 == len([n for n in names if n.startswith("pwsse__")])
    for server in ("pw", "pwsse"):
        session = await gateway.open([f"{server}__browser_navigate", f"{server}__browser_snapshot"])
        navigated = await gateway.call(session.id, f"{server}__browser_navigate", {"url": site.url + "/form"})
        snapshot = await gateway.call(session.id, f"{server}__browser_snapshot", {})
        bad = await gateway.call(session.id, f"{server}__browser_navigate", {"link": "x"})
        await gateway.close(session.id)
        assert not navigated.result.is_error and "Page Title: Form" in navigated.result.text, navigated.result.text
        assert 'textbox "Name"' in snapshot.result.text
        assert bad.result.is_error
