"""The network guard's log: what was blocked, and whether it was a navigation."""

from __future__ import annotations

from typing import Any

import pytest

from tracewheel.gateway.session import BrowserSession

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_subresources_are_logged_as_non_navigations(session: BrowserSession, site: Any) -> None:
    guard = session.tool_context.guard
    mark = guard.mark()

    await session.call_tool("browser_navigate", {"url": site.url + "/images"})

    blocked = guard.blocked_since(mark)
    assert {b.url for b in blocked} >= {"http://10.255.255.1/pixel.png", f"{site.denied_url}/pixel.png"}
    assert not any(b.navigation for b in blocked)


async def test_redirect_hop_is_logged_with_where_the_chain_started(session: BrowserSession, site: Any) -> None:
    guard = session.tool_context.guard
    mark = guard.mark()

    await session.call_tool("browser_navigate", {"url": site.url + "/redirect-loopback"})

    first = guard.blocked_since(mark)[0]
    assert first.url == f"{site.denied_url}/secret"
    assert first.navigation
    assert first.redirected_from == f"{site.url}/redirect-loopback"
    assert site.denied_hits == []
