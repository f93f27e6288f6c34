"""Sessions: isolation, concurrency, the cap, tool subsets, idle reaping, browser crashes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from playwright.async_api import Error as PlaywrightError

from tracewheel.core.errors import InvalidArgument
from tracewheel.gateway.browser_options import BrowserConfig
from tracewheel.gateway.session import (
    CRASHED_MESSAGE,
    BrowserSession,
    SessionLimitReached,
    SessionManager,
    SessionNotFound,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_sessions_do_not_share_cookies(manager: SessionManager, site: Any) -> None:
    alice, bob = await manager.open(), await manager.open()
    try:
        await alice.call_tool("browser_navigate", {"url": site.url + "/cookie?visitor=alice"})
        await bob.call_tool("browser_navigate", {"url": site.url + "/cookie?visitor=bob"})

        alice_sees = await alice.call_tool("browser_navigate", {"url": site.url + "/show-cookie"})
        bob_sees = await bob.call_tool("browser_navigate", {"url": site.url + "/show-cookie"})
    finally:
        await manager.close(alice.id)
        await manager.close(bob.id)

    assert "Cookie header: visitor=alice" in alice_sees.text
    assert "Cookie header: visitor=bob" in bob_sees.text


async def test_sessions_run_concurrently(manager: SessionManager, site: Any) -> None:
    sessions = [await manager.open() for _ in range(3)]
    paths = ["/form", "/select", "/events"]
    try:
        results = await asyncio.gather(
            *(s.call_tool("browser_navigate", {"url": site.url + p}) for s, p in zip(sessions, paths, strict=True))
        )
    finally:
        for s in sessions:
            await manager.close(s.id)

    assert [r.text.split("- Page Title: ")[1].split("\n")[0] for r in results] == ["Form", "Select", "Events"]


async def test_cap_on_sessions_is_a_clear_error(manager: SessionManager) -> None:
    opened: list[BrowserSession] = []
    try:
        while len(manager.sessions()) < manager.config.max_sessions:
            opened.append(await manager.open())
        with pytest.raises(SessionLimitReached, match=f"all {manager.config.max_sessions} browser sessions are in use"):
            await manager.open()
    finally:
        for s in opened:
            await manager.close(s.id)


async def test_get_and_close_unknown_session(manager: SessionManager) -> None:
    with pytest.raises(SessionNotFound, match="open a new one"):
        manager.get("missing")
    with pytest.raises(SessionNotFound):
        await manager.close("missing")


async def test_session_has_only_its_tools(manager: SessionManager, site: Any) -> None:
    limited = await manager.open(capabilities=["core-navigation"], tools=["browser_snapshot"])
    try:
        names = sorted(t.name for t in limited.list_tools())
        refused = await limited.call_tool("browser_click", {"ref": "e1"})
    finally:
        await manager.close(limited.id)

    assert names == ["browser_navigate", "browser_navigate_back", "browser_snapshot"]
    assert refused.is_error
    assert "Unknown tool 'browser_click'" in refused.text
    assert "browser_navigate, browser_navigate_back, browser_snapshot" in refused.text


async def test_unknown_capability_is_refused(manager: SessionManager) -> None:
    with pytest.raises(InvalidArgument):
        await manager.open(capabilities=["telepathy"])


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def own_manager(browser_config: BrowserConfig) -> Any:
    """A manager with its own chromium (so it can crash) and a clock the test moves."""
    clock = FakeClock()
    config = browser_config.model_copy(update={"idle_timeout_s": 60, "max_sessions": 2})
    async with SessionManager(config, clock=clock) as own:
        yield own, clock


@pytest.mark.asyncio(loop_scope="function")
async def test_idle_sessions_are_reaped(own_manager: Any, site: Any) -> None:
    manager, clock = own_manager
    idle, active = await manager.open(), await manager.open()
    clock.now += 50
    await active.call_tool("browser_navigate", {"url": site.url + "/"})
    clock.now += 20

    reaped = await manager.reap_idle()

    assert reaped == [idle.id]
    assert idle.closed
    assert [s.id for s in manager.sessions()] == [active.id]
    with pytest.raises(SessionNotFound):
        manager.get(idle.id)


@pytest.mark.asyncio(loop_scope="function")
async def test_crashed_browser_is_relaunched_for_new_sessions(own_manager: Any, site: Any) -> None:
    manager, _ = own_manager
    doomed = await manager.open()
    await doomed.call_tool("browser_navigate", {"url": site.url + "/"})
    old_browser = manager.browser
    disconnected = asyncio.get_running_loop().create_future()
    old_browser.once("disconnected", lambda _: disconnected.set_result(True))
    cdp = await old_browser.new_browser_cdp_session()
    with contextlib.suppress(PlaywrightError):
        await cdp.send("Browser.crash")
    await asyncio.wait_for(disconnected, 10)

    crashed = await doomed.call_tool("browser_snapshot", {})
    fresh = await manager.open()
    works = await fresh.call_tool("browser_navigate", {"url": site.url + "/"})
    reaped = await manager.reap_idle()

    assert crashed.is_error
    assert CRASHED_MESSAGE in crashed.text
    assert manager.browser is not old_browser
    assert not works.is_error, works.text
    assert reaped == [doomed.id]
