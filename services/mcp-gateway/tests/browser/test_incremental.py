"""Incremental snapshots: the diff itself, then a real chromium session reporting by changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tracewheel.gateway.browser.context import CHANGED_HEADER, REMOVED_HEADER, UNCHANGED_LINE
from tracewheel.gateway.browser.incremental import snapshot_changes
from tracewheel.gateway.session import BrowserSession

FindRef = Callable[[str, str], str]

ITEM_PAGE = """\
- link "Shop" [ref=e3]
- searchbox "Search" [ref=e5]
- heading "Blue Yo-Yo"
- list "Details":
  - text: "Price: $7.49"
  - text: "In stock: 39"
- heading "Order"
- form "Order":
  - spinbutton "Quantity" [ref=e28]: "1"
  - textbox "Email" [ref=e29]
  - combobox "Delivery" [ref=e30]:
    - option "Standard" [selected]
    - option "Express"
  - button "Place order" [ref=e31]"""


def test_a_typed_field_is_reported_under_its_form() -> None:
    after = ITEM_PAGE.replace('[ref=e28]: "1"', '[ref=e28]: "3"')

    assert snapshot_changes(ITEM_PAGE, after) == ('- form "Order":\n  - spinbutton "Quantity" [ref=e28]: "3"', "")


def test_a_selected_option_is_a_change_not_a_removal() -> None:
    after = ITEM_PAGE.replace('"Standard" [selected]', '"Standard"').replace('"Express"', '"Express" [selected]')

    changed, removed = snapshot_changes(ITEM_PAGE, after) or ("", "")

    assert changed.splitlines() == [
        '- form "Order":',
        '  - combobox "Delivery" [ref=e30]:',
        '    - option "Standard"',
        '    - option "Express" [selected]',
    ]
    assert removed == ""


def test_lines_that_are_gone_are_listed_apart() -> None:
    after = ITEM_PAGE.replace('  - text: "In stock: 39"\n', "")

    assert snapshot_changes(ITEM_PAGE, after) == ("", '  - text: "In stock: 39"')


def test_nothing_changed_is_two_empty_outlines() -> None:
    assert snapshot_changes(ITEM_PAGE, ITEM_PAGE) == ("", "")


def test_a_page_mostly_rewritten_is_printed_whole() -> None:
    other = "\n".join(f'- link "Result {i}" [ref=e{i}]' for i in range(12))

    assert snapshot_changes(ITEM_PAGE, other) is None


pytestmark_browser = pytest.mark.asyncio(loop_scope="session")


async def _form(session: BrowserSession, site: Any, *, incremental: bool) -> str:
    """The test site's form page opened in `session`, with incremental snapshots on or off."""
    session.tool_context.incremental_snapshots = incremental
    return (await session.call_tool("browser_navigate", {"url": site.url + "/form"})).text


@pytestmark_browser
async def test_an_action_on_the_same_page_reports_what_changed(
    session: BrowserSession, site: Any, find_ref: FindRef
) -> None:
    page = await _form(session, site, incremental=True)
    name = find_ref(page, 'textbox "Name"')

    typed = await session.call_tool("browser_type", {"element": "Name", "ref": name, "text": "Ada"})

    assert not typed.is_error, typed.text
    assert CHANGED_HEADER in typed.text
    changes = typed.text.split(CHANGED_HEADER)[1]
    assert f'textbox "Name" [active] [ref={name}]: Ada' in changes  # the full style marks the focus
    assert 'combobox "Size"' not in changes  # untouched: not printed again
    again = await session.call_tool("browser_type", {"element": "Name", "ref": name, "text": "Ada"})
    assert UNCHANGED_LINE in again.text
    # the refs of lines not printed still work
    size = await session.call_tool(
        "browser_select_option", {"element": "Size", "ref": find_ref(page, 'combobox "Size"'), "values": ["l"]}
    )
    assert not size.is_error, size.text
    assert "[selected]" in size.text.split(CHANGED_HEADER)[1]
    assert REMOVED_HEADER not in size.text


@pytestmark_browser
async def test_a_new_url_and_browser_snapshot_show_the_whole_page(
    session: BrowserSession, site: Any, find_ref: FindRef
) -> None:
    query = find_ref(await _form(session, site, incremental=True), 'textbox "Query"')

    sent = await session.call_tool("browser_type", {"element": "Query", "ref": query, "text": "x", "submit": True})
    whole = await session.call_tool("browser_snapshot", {})

    assert "/submitted" in sent.text and "- Page Snapshot:\n" in sent.text
    assert "- Page Snapshot:\n" in whole.text and CHANGED_HEADER not in whole.text


@pytestmark_browser
async def test_the_full_mode_reports_the_whole_page_after_every_action(
    session: BrowserSession, site: Any, find_ref: FindRef
) -> None:
    name = find_ref(await _form(session, site, incremental=False), 'textbox "Name"')

    typed = await session.call_tool("browser_type", {"element": "Name", "ref": name, "text": "Ada"})

    assert "- Page Snapshot:\n" in typed.text and 'combobox "Size"' in typed.text
