"""The compact snapshot style: the pure rendering, and a real page through a session."""

from __future__ import annotations

from typing import Any

import pytest

from tracewheel.gateway.browser.compact import compact_snapshot
from tracewheel.gateway.session import BrowserSession

# as chromium prints the task site's item page (aria_snapshot mode="ai"), shortened
ITEM_PAGE = """\
- generic [active] [ref=f2e1]:
  - banner [ref=f2e2]:
    - link "Tracewheel Shop" [ref=f2e3] [cursor=pointer]:
      - /url: /
    - search [ref=f2e4]:
      - searchbox "Search" [ref=f2e5]
      - button "Search" [ref=f2e6]
  - main [ref=f2e7]:
    - heading "Black Copper Lantern" [level=1] [ref=f2e8]
    - paragraph [ref=f2e9]: A lightweight copper lantern.
    - list "Details" [ref=f2e10]:
      - listitem [ref=f2e11]: "Price: $3.24"
      - listitem [ref=f2e12]: "SKU: TW-9831"
    - list [ref=f2e19]:
      - listitem [ref=f2e20]:
        - link "Black Copper Night Light" [ref=f2e21] [cursor=pointer]:
          - /url: /item/TW-4793
        - text: $22.49
    - form "Order" [ref=f2e27]:
      - spinbutton "Quantity" [ref=f2e28]: "1"
      - combobox "Delivery" [ref=f2e30]:
        - option "Standard" [selected]
        - option "Express"
      - button "Place order" [ref=f2e31]"""

ITEM_PAGE_COMPACT = """\
- link "Tracewheel Shop" [ref=f2e3]
- searchbox "Search" [ref=f2e5]
- button "Search" [ref=f2e6]
- heading "Black Copper Lantern"
- paragraph: A lightweight copper lantern.
- list "Details":
  - text: "Price: $3.24"
  - text: "SKU: TW-9831"
- link "Black Copper Night Light" [ref=f2e21]
- text: $22.49
- form "Order":
  - spinbutton "Quantity" [ref=f2e28]: "1"
  - combobox "Delivery" [ref=f2e30]:
    - option "Standard" [selected]
    - option "Express"
  - button "Place order" [ref=f2e31]"""


def test_compact_keeps_what_a_model_acts_on_and_reads() -> None:
    assert compact_snapshot(ITEM_PAGE) == ITEM_PAGE_COMPACT


def test_compact_is_stable() -> None:
    assert compact_snapshot(ITEM_PAGE_COMPACT) == ITEM_PAGE_COMPACT


def test_a_clickable_element_keeps_its_ref_and_its_place() -> None:
    text = '- generic [ref=e1]:\n  - generic [ref=e2] [cursor=pointer]: Open menu\n  - img "Logo" [ref=e3]'

    assert compact_snapshot(text) == '- generic [ref=e2]: Open menu\n- img "Logo"'


def test_names_with_quotes_and_other_states_survive() -> None:
    text = '- checkbox "Say \\"hi\\"" [checked] [ref=e4]\n- button "Go" [disabled] [ref=e5]'

    assert compact_snapshot(text) == text


def test_lines_it_does_not_understand_are_kept() -> None:
    text = "plain\n- paragraph [ref=e2]: |\n    first line\n    second line\n- ???"

    assert compact_snapshot(text) == "plain\n- paragraph: |\n  first line\n  second line\n- ???"


def test_an_empty_snapshot_stays_empty() -> None:
    assert compact_snapshot("") == ""


pytestmark_browser = pytest.mark.asyncio(loop_scope="session")


@pytestmark_browser
async def test_a_compact_session_still_acts_on_every_ref(session: BrowserSession, site: Any) -> None:
    full = await session.call_tool("browser_navigate", {"url": site.url + "/"})
    heading_ref = full.text.split('heading "Test site" [level=1] [ref=')[1].split("]")[0]
    session.tool_context.compact_snapshots = True

    compact = await session.call_tool("browser_snapshot", {})

    assert "/url:" not in compact.text and "[cursor=pointer]" not in compact.text
    assert '- link "Form" [ref=e' in compact.text
    assert '- heading "Test site"\n' in compact.text  # no ref printed ...
    clicked = await session.call_tool("browser_click", {"element": "heading", "ref": heading_ref})
    assert not clicked.is_error, clicked.text  # ... but it still works
    form_ref = compact.text.split('- link "Form" [ref=')[1].split("]")[0]
    followed = await session.call_tool("browser_click", {"element": "Form link", "ref": form_ref})
    assert "- Page Title: Form" in followed.text
    assert "/url:" not in followed.text
