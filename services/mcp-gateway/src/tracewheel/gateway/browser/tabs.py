"""The tab tool: browser_tabs (capability core-tabs).

Tabs are numbered from 0 in the order they opened; tabs a page opens itself (target=_blank,
window.open) are tracked too. `new`, `select` and `close` answer with the tab list and the page
state of the tab that is now current, so its refs are fresh.
"""

from __future__ import annotations

from typing import Any

from tracewheel.gateway.browser.base import ToolDefinition, ToolError, object_schema
from tracewheel.gateway.browser.context import ToolContext
from tracewheel.gateway.results import Part, TextPart


def _index(args: dict[str, Any], action: str) -> int | None:
    if "index" not in args:
        return None
    value = args["index"]
    if value != int(value):
        raise ToolError(f"Tab index must be a whole number, got {value} for action '{action}'.")
    return int(value)


async def tabs(ctx: ToolContext, args: dict[str, Any]) -> list[Part]:
    """Lists, opens, closes or selects tabs.

    Raises:
        ToolError: a failure the model can act on (shown to it as an error result).
    """
    action = args["action"]
    index = _index(args, action)
    if action == "new":
        await ctx.new_page()
    elif action == "close":
        await ctx.close_page(index)
    elif action == "select":
        if index is None:
            raise ToolError("Tab index is required for action 'select'; call browser_tabs with action 'list'.")
        ctx.select(index)
    sections = ["### Open tabs\n" + await ctx.tabs_markdown()]
    if action != "list" and ctx.pages:
        sections.append(await ctx.page_state())
    return [TextPart("\n".join(sections))]


TOOLS = [
    ToolDefinition(
        name="browser_tabs",
        title="Manage tabs",
        description="List, create, close, or select a browser tab.",
        input_schema=object_schema(
            {
                "action": {
                    "type": "string",
                    "enum": ["list", "new", "close", "select"],
                    "description": "Operation to perform",
                },
                "index": {
                    "description": "Tab index, used for close/select. If omitted for close, current tab is closed.",
                    "type": "number",
                },
            },
            required=("action",),
        ),
        capability="core-tabs",
        read_only=False,
        handler=tabs,
    ),
]
