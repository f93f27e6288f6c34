"""Element and keyboard tools on real pages: click, type, fill_form, select_option, press_key, hover."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tracewheel.gateway.session import BrowserSession

pytestmark = pytest.mark.asyncio(loop_scope="session")
FindRef = Callable[[str, str], str]


async def test_click_follows_a_link(session: BrowserSession, site: Any, find_ref: FindRef) -> None:
    home = await session.call_tool("browser_navigate", {"url": site.url + "/"})

    result = await session.call_tool(
        "browser_click", {"element": "Form link", "ref": find_ref(home.text, 'link "Form"')}
    )

    assert not result.is_error, result.text
    assert f"- Page URL: {site.url}/form" in result.text
    assert 'textbox "Name"' in result.text


async def test_double_click(session: BrowserSession, site: Any, find_ref: FindRef) -> None:
    page = await session.call_tool("browser_navigate", {"url": site.url + "/events"})
    ref = find_ref(page.text, 'button "Double click me"')

    result = await session.call_tool("browser_click", {"element": "button", "ref": ref, "doubleClick": True})

    assert 'button "Double clicked!"' in result.text


async def test_type_with_submit_submits_the_form(session: BrowserSession, site: Any, find_ref: FindRef) -> None:
    form = await session.call_tool("browser_navigate", {"url": site.url + "/form"})

    result = await session.call_tool(
        "browser_type",
        {"element": "Query", "ref": find_ref(form.text, 'textbox "Query"'), "text": "hello world", "submit": True},
    )

    assert not result.is_error, result.text
    assert "- Page Title: Submitted" in result.text
    assert "query=hello world" in result.text


async def test_type_slowly_fires_key_handlers(session: BrowserSession, site: Any, find_ref: FindRef) -> None:
    form = await session.call_tool("browser_navigate", {"url": site.url + "/form"})
    ref = find_ref(form.text, 'textbox "Name"')

    result = await session.call_tool("browser_type", {"element": "Name", "ref": ref, "text": "Ada", "slowly": True})

    assert 'textbox "Name"' in result.text
    assert ": Ada" in result.text


async def test_fill_form_sets_every_field_type(session: BrowserSession, site: Any, find_ref: FindRef) -> None:
    form = await session.call_tool("browser_navigate", {"url": site.url + "/form"})
    fields = [
        {"name": "Name", "type": "textbox", "ref": find_ref(form.text, 'textbox "Name"'), "value": "Grace"},
        {"name": "Subscribe", "type": "checkbox", "ref": find_ref(form.text, 'checkbox "Subscribe"'), "value": "true"},
        {"name": "Size", "type": "combobox", "ref": find_ref(form.text, 'combobox "Size"'), "value": "Large"},
    ]

    filled = await session.call_tool("browser_fill_form", {"fields": fields})
    sent = await session.call_tool("browser_click", {"element": "Send", "ref": find_ref(filled.text, 'button "Send"')})

    assert filled.text.startswith("Filled 3 field(s).")
    assert "name=Grace" in sent.text
    assert "subscribe=yes" in sent.text
    assert "size=l" in sent.text


async def test_select_option(session: BrowserSession, site: Any, find_ref: FindRef) -> None:
    page = await session.call_tool("browser_navigate", {"url": site.url + "/select"})
    ref = find_ref(page.text, 'combobox "Color"')

    result = await session.call_tool("browser_select_option", {"element": "Color", "ref": ref, "values": ["green"]})

    assert not result.is_error, result.text
    assert "Selected: green" in result.text


async def test_press_key_reaches_the_page(session: BrowserSession, site: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/events"})

    result = await session.call_tool("browser_press_key", {"key": "ArrowLeft"})

    assert not result.is_error, result.text
    assert "Key: ArrowLeft" in result.text


async def test_unknown_key_is_an_error(session: BrowserSession, site: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/events"})

    result = await session.call_tool("browser_press_key", {"key": "NoSuchKey"})

    assert result.is_error
    assert "NoSuchKey" in result.text


async def test_hover(session: BrowserSession, site: Any, find_ref: FindRef) -> None:
    page = await session.call_tool("browser_navigate", {"url": site.url + "/events"})

    result = await session.call_tool(
        "browser_hover", {"element": "Hover", "ref": find_ref(page.text, 'button "Hover me"')}
    )

    assert 'button "Hovered!"' in result.text


async def test_stale_ref_is_an_error_with_a_way_out(session: BrowserSession, site: Any, find_ref: FindRef) -> None:
    home = await session.call_tool("browser_navigate", {"url": site.url + "/"})
    old_ref = find_ref(home.text, 'link "Select"')
    await session.call_tool("browser_click", {"element": "Form", "ref": find_ref(home.text, 'link "Form"')})

    result = await session.call_tool("browser_click", {"element": "Select (old page)", "ref": old_ref})

    assert result.is_error
    assert f"Ref {old_ref} not found in the current page snapshot" in result.text
    assert "browser_snapshot" in result.text
    assert not (await session.call_tool("browser_snapshot", {})).is_error


async def test_made_up_ref_fails_fast(session: BrowserSession, site: Any) -> None:
    await session.call_tool("browser_navigate", {"url": site.url + "/"})

    result = await session.call_tool("browser_click", {"element": "nothing", "ref": "e9999"})

    assert result.is_error
    assert "Ref e9999 not found" in result.text
