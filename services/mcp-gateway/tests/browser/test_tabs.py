"""browser_tabs, and tabs that pages open themselves (target=_blank)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tracewheel.gateway.session import BrowserSession

pytestmark = pytest.mark.asyncio(loop_scope="session")
FindRef = Callable[[str, str], str]


async def test_target_blank_link_opens_a_tracked_tab(session: BrowserSession, site: Any, find_ref: FindRef) -> None:
    home = await session.call_tool("browser_navigate", {"url": site.url + "/"})

    clicked = await session.call_tool(
        "browser_click", {"element": "popup", "ref": find_ref(home.text, 'link "Open popup"')}
    )
    listed = await session.call_tool("browser_tabs", {"action": "list"})

    assert not clicked.is_error, clicked.text
    assert "### Open tabs" in clicked.text
    assert f"- 0: (current) [Home]({site.url}/)" in listed.text
    assert f"- 1: [Popup page]({site.url}/popup)" in listed.text


async def test_select_switches_tab_and_refreshes_refs(session: BrowserSession, site: Any, find_ref: FindRef) -> None:
    home = await session.call_tool("browser_navigate", {"url": site.url + "/"})
    await session.call_tool("browser_click", {"element": "popup", "ref": find_ref(home.text, 'link "Open popup"')})

    selected = await session.call_tool("browser_tabs", {"action": "select", "index": 1})

    assert f"- 1: (current) [Popup page]({site.url}/popup)" in selected.text
    assert "- Page Title: Popup page" in selected.text
    assert 'heading "Popup"' in selected.text


async def test_new_and_close(session: BrowserSession, site: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/"})

    opened = await session.call_tool("browser_tabs", {"action": "new"})
    closed = await session.call_tool("browser_tabs", {"action": "close"})

    assert "- 1: (current) [](about:blank)" in opened.text
    assert "about:blank" not in closed.text
    assert f"- 0: (current) [Home]({site.url}/)" in closed.text


async def test_new_tab_to_denied_url_is_blocked(session: BrowserSession, site: Any, find_ref: FindRef) -> None:
    home = await session.call_tool("browser_navigate", {"url": site.url + "/"})
    ref = find_ref(home.text, 'link "Open denied popup"')

    result = await session.call_tool("browser_click", {"element": "denied popup", "ref": ref})

    assert result.is_error
    assert f"Navigation to {site.denied_url}/secret blocked by the gateway's URL policy" in result.text
    assert "127.0.0.1 is a loopback address" in result.text
    assert site.denied_hits == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"action": "select"}, "Tab index is required"),
        ({"action": "select", "index": 7}, "Tab 7 does not exist"),
        ({"action": "close", "index": 1.5}, "whole number"),
        ({"action": "shuffle"}, "Invalid arguments for browser_tabs at action"),
    ],
)
async def test_bad_tab_requests_are_errors(session: BrowserSession, arguments: dict[str, Any], message: str) -> None:
    result = await session.call_tool("browser_tabs", arguments)

    assert result.is_error
    assert message in result.text
