"""External MCP servers: the config file, and the real @playwright/mcp 0.0.70 behind the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio

from tracewheel.core.errors import ConfigError, InvalidArgument
from tracewheel.gateway.aggregate import Aggregator, ServerSpec, load_server_specs, parse_server_specs
from tracewheel.gateway.router import Gateway
from tracewheel.gateway.session import SessionManager


def test_parse_command_and_url_servers() -> None:
    specs = parse_server_specs(
        {
            "mcpServers": {
                "playwright": {"command": "npx", "args": ["@playwright/mcp@0.0.70"], "env": {"A": "1"}},
                "remote_docs": {"url": "http://127.0.0.1:9000/mcp"},
            }
        }
    )
    assert specs == [
        ServerSpec("playwright", "npx", ("@playwright/mcp@0.0.70",), {"A": "1"}),
        ServerSpec("remote_docs", url="http://127.0.0.1:9000/mcp"),
    ]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"servers": {}}, "expected"),
        ({"mcpServers": {"a__b": {"command": "x"}}}, "server name"),
        ({"mcpServers": {"a": {"command": "x", "url": "http://h"}}}, "either 'command'"),
        ({"mcpServers": {"a": {}}}, "either 'command'"),
        ({"mcpServers": {"a": {"command": "x", "args": "--flag"}}}, "mcpServers.a.args"),
        ({"mcpServers": {"a": {"command": "x", "env": {"N": 1}}}}, "mcpServers.a.env"),
    ],
)
def test_bad_documents_are_config_errors(document: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_server_specs(document)


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"servers\.json"):
        load_server_specs(path)


def _server_processes() -> list[psutil.Process]:
    """Our live playwright-mcp child processes (node); exited and zombie ones do not count."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and "playwright-mcp" in " ".join(proc.cmdline()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


@pytest_asyncio.fixture(loop_scope="session")
async def aggregated(manager: SessionManager, playwright_mcp: ServerSpec) -> AsyncIterator[Gateway]:
    aggregator = Aggregator([playwright_mcp], timeout_s=60)
    await aggregator.start()
    gateway = Gateway(manager, aggregator)
    yield gateway
    await gateway.close_all()
    await aggregator.close()
    assert _server_processes() == [], "playwright-mcp survived close()"


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_external_tools_are_prefixed_and_merged(aggregated: Gateway) -> None:
    names = [spec.name for spec in aggregated.tool_specs()]

    assert "browser_navigate" in names and "playwright__browser_navigate" in names
    assert len(names) == len(set(names))
    assert len([n for n in names if n.startswith("playwright__")]) == 21  # 0.0.70 without --caps
    assert len(await aggregated.aggregator.refresh()) == 21


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_call_through_playwright_mcp(aggregated: Gateway, site: Any) -> None:
    session = await aggregated.open(["playwright__browser_navigate", "playwright__browser_snapshot"])
    navigated = await aggregated.call(session.id, "playwright__browser_navigate", {"url": site.url + "/form"})
    snapshot = await aggregated.call(session.id, "playwright__browser_snapshot", {})
    bad = await aggregated.call(session.id, "playwright__browser_navigate", {"link": "x"})
    await aggregated.close(session.id)

    assert [t["function"]["name"] for t in session.openai.tools] == [
        "playwright__browser_navigate",
        "playwright__browser_snapshot",
    ]
    assert not navigated.result.is_error, navigated.result.text
    assert "Page Title: Form" in navigated.result.text
    assert 'textbox "Name"' in snapshot.result.text
    assert bad.result.is_error


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_dead_stdio_server_is_restarted_on_next_call(aggregated: Gateway, site: Any) -> None:
    server = aggregated.aggregator.servers["playwright"]
    session = await aggregated.open(["playwright__browser_navigate"])
    before = await aggregated.call(session.id, "playwright__browser_navigate", {"url": site.url + "/"})
    (victim,) = _server_processes()
    for process in [*victim.children(recursive=True), victim]:
        process.kill()
    psutil.wait_procs([victim], timeout=10)

    after = await aggregated.call(session.id, "playwright__browser_navigate", {"url": site.url + "/select"})
    await aggregated.close(session.id)

    assert not before.result.is_error
    assert not after.result.is_error, after.result.text
    assert "Page Title: Select" in after.result.text
    assert server.restarts == 1
    assert [p.pid for p in _server_processes()] != [victim.pid]


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_unknown_external_tool_is_invalid_argument(aggregated: Gateway) -> None:
    with pytest.raises(InvalidArgument, match="playwright__browser_fly"):
        await aggregated.open(["playwright__browser_fly"])
