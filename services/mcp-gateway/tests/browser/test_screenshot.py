"""browser_take_screenshot: viewport, full page, element; saved as attachments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tracewheel.gateway.session import BrowserSession

pytestmark = pytest.mark.asyncio(loop_scope="session")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def test_viewport_png_is_saved_and_named(session: BrowserSession, site: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/"})

    result = await session.call_tool("browser_take_screenshot", {})

    assert not result.is_error, result.text
    (attachment,) = result.attachments
    assert attachment.mime_type == "image/png"
    assert attachment.path.read_bytes().startswith(PNG_MAGIC)
    assert f"[screenshot saved to {attachment.path} (image/png, {attachment.size} bytes)]" in result.text


async def test_full_page_jpeg_with_filename(session: BrowserSession, site: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/long"})

    result = await session.call_tool("browser_take_screenshot", {"type": "jpeg", "fullPage": True, "filename": "long"})

    (attachment,) = result.attachments
    assert attachment.path.name == "long.jpeg"
    assert attachment.path.read_bytes().startswith(b"\xff\xd8")
    assert "full page" in result.text


async def test_element_screenshot(session: BrowserSession, site: Any, find_ref: Callable[[str, str], str]) -> None:
    page = await session.call_tool("browser_navigate", {"url": site.url + "/events"})
    ref = find_ref(page.text, 'button "Hover me"')

    result = await session.call_tool("browser_take_screenshot", {"element": "Hover button", "ref": ref})

    assert not result.is_error, result.text
    assert "element Hover button" in result.text


async def test_full_page_of_an_element_is_an_error(session: BrowserSession, site: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/events"})

    result = await session.call_tool("browser_take_screenshot", {"ref": "e1", "fullPage": True})

    assert result.is_error
    assert "fullPage cannot be used with element screenshots" in result.text
