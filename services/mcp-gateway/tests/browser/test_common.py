"""browser_close."""

from __future__ import annotations

from typing import Any

import pytest

from tracewheel.gateway.session import BrowserSession

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_close_closes_tabs_and_keeps_the_session(session: BrowserSession, site: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/cookie?visitor=kept"})

    closed = await session.call_tool("browser_close", {})
    listed = await session.call_tool("browser_tabs", {"action": "list"})
    snapshot_error = await session.call_tool("browser_navigate_back", {})
    reopened = await session.call_tool("browser_navigate", {"url": site.url + "/show-cookie"})

    assert "No open tabs" in closed.text
    assert "No open tabs" in listed.text
    assert snapshot_error.is_error
    assert "No open tab" in snapshot_error.text
    assert "visitor=kept" in reopened.text
