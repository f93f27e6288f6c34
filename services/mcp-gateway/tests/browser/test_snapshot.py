"""browser_snapshot: inline, depth-limited, saved to a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tracewheel.gateway.session import BrowserSession

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_snapshot_of_blank_tab(session: BrowserSession) -> None:
    result = await session.call_tool("browser_snapshot", {})

    assert not result.is_error, result.text
    assert "- Page URL: about:blank" in result.text


async def test_snapshot_lists_refs(session: BrowserSession, site: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/select"})

    result = await session.call_tool("browser_snapshot", {})

    assert 'combobox "Color" [ref=e' in result.text
    assert 'option "Red" [selected]' in result.text


async def test_depth_limits_the_tree(session: BrowserSession, site: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/"})

    shallow = await session.call_tool("browser_snapshot", {"depth": 1})

    assert 'link "Form"' not in shallow.text
    assert "[ref=e1]" in shallow.text


async def test_filename_saves_the_snapshot_instead(session: BrowserSession, site: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/"})

    result = await session.call_tool("browser_snapshot", {"filename": "../../escape/home.md"})

    assert "```yaml" not in result.text
    (attachment,) = result.attachments
    assert attachment.path.name == "home.md"
    assert attachment.path.parent.name == session.id
    assert 'link "Form"' in Path(attachment.path).read_text()
    assert f"[snapshot saved to {attachment.path}" in result.text
