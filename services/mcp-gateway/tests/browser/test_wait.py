"""browser_wait_for: text appearing, text disappearing, time."""

from __future__ import annotations

from typing import Any

import pytest

from tracewheel.gateway.session import BrowserSession

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_waits_for_text_to_appear_and_go(session: BrowserSession, site: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/events"})

    result = await session.call_tool("browser_wait_for", {"text": "Ready now", "textGone": "Loading..."})

    assert not result.is_error, result.text
    assert result.text.startswith("Waited for Ready now")
    assert "Loading..." not in result.text


async def test_waits_for_time(session: BrowserSession, site: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/"})

    result = await session.call_tool("browser_wait_for", {"time": 0.05})

    assert result.text.startswith("Waited for 0.05")


async def test_text_that_never_appears_is_an_error(session: BrowserSession, site: Any, monkeypatch: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/"})
    monkeypatch.setattr(session.tool_context, "timeouts", session.tool_context.timeouts.__class__(navigation=0.2))

    result = await session.call_tool("browser_wait_for", {"text": "Never there"})

    assert result.is_error
    assert "'Never there' did not appear within 0.2 s" in result.text


async def test_needs_something_to_wait_for(session: BrowserSession) -> None:
    result = await session.call_tool("browser_wait_for", {})

    assert result.is_error
    assert "at least one of time" in result.text
